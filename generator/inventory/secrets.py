"""Secret files stay in the secrets folder: every `*_file` of the inventory, checked where the inventory lies.

Alertmanager sends what a receiver's file holds to the receiver's URL,
Prometheus sends a password or token file to a scrape target or a remote-write URL
(the `*_file` keys of `extra_scrape_configs` too, copied into prometheus.yml as written),
and compose mounts each file into a container. A reference such as
`../../etc/shadow`, `/etc/shadow` or a symlink in the secrets folder pointing
out of it would ship that file instead; each is an error. A file that does
not exist yet is fine (secrets are created after the inventory is written):
its path is checked as written, and every part of it that exists is checked
with symlinks followed.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from pydantic import BaseModel

from generator.errors import Problem
from generator.inventory.yamlsource import Source

Path = tuple[Any, ...]


# Values with nothing below them: a fleet's inventory holds hundreds of thousands, not worth a call each.
_LEAVES = frozenset({str, int, float, bool, type(None)})


def file_refs(obj: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(field path, value) of every `*_file` field set in a schema object, by the names the file uses."""
    if isinstance(obj, BaseModel):
        for name, info in type(obj).model_fields.items():
            value = getattr(obj, name)
            key = info.alias or name
            if name.endswith("_file") and isinstance(value, str):
                yield path + (key,), value
            elif type(value) not in _LEAVES:
                yield from file_refs(value, path + (key,))
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if type(value) not in _LEAVES:
                yield from file_refs(value, path + (key,))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            if type(value) not in _LEAVES:
                yield from file_refs(value, path + (i,))


def raw_file_refs(obj: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """(path, value) of every `*_file` key at any depth of a configuration fragment copied as written (extra_scrape_configs)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str) and key.endswith("_file") and isinstance(value, str):
                yield path + (key,), value
            else:
                yield from raw_file_refs(value, path + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from raw_file_refs(value, path + (i,))


def _inside(path: str, root: str) -> bool:
    return path != root and os.path.commonpath([path, root]) == root


def root(inventory_file: str, secrets_dir: str) -> str:
    """The secrets folder, absolute, as written (symlinks not followed)."""
    base = os.path.dirname(os.path.abspath(inventory_file))
    return os.path.normpath(os.path.join(base, secrets_dir))


def problems(inv: Any, src: Source) -> list[Problem]:
    secrets_dir = inv.stack.secrets_dir
    folder = root(src.file, secrets_dir)
    real_folder = os.path.realpath(folder)
    shown = secrets_dir.rstrip("/") + "/"
    out: list[Problem] = []
    inventory = os.path.realpath(src.file)
    if inventory == real_folder or _inside(inventory, real_folder):
        out.append(src.problem(("stack", "secrets_dir"), f"{secrets_dir!r} holds the inventory itself: secrets need a folder of "
                                                         f"their own, e.g. {os.path.join(os.path.dirname(src.file) or '.', 'secrets')}"))
        return out
    base = os.path.dirname(os.path.abspath(src.file))
    refs = [*file_refs(inv), *raw_file_refs(getattr(inv, "extra_scrape_configs", []), ("extra_scrape_configs",))]
    for path, ref in refs:
        written = os.path.normpath(os.path.join(base, ref))
        if not _inside(written, folder):
            out.append(src.problem(path, f"{ref!r} is outside the secrets folder {shown}: secret files must lie in it "
                                         f"(set stack.secrets_dir to move the folder)"))
            continue
        real = os.path.realpath(written)
        if not _inside(real, real_folder):
            out.append(src.problem(path, f"{ref!r} leads out of the secrets folder {shown} through a symlink (to {real}): "
                                         "put the secret itself in the folder"))
    return out
