"""What an import did with each thing it read, located in the source file: mapped, kept as written, or not imported."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.inventory.yamlsource import Source, format_path

# Sections of the printed report, in order.
UNMAPPED = "not imported"  # nothing in services.yaml does this: the user decides
CUSTOM = "kept as custom rules (expression kept)"
VERBATIM = "kept as written (extra_scrape_configs)"
NOTE = "mapped, with a difference to know"
MAPPED = "mapped to the catalogue"


@dataclass(frozen=True)
class Item:
    section: str
    where: str  # file:line: path
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    items: list[Item] = field(default_factory=list)

    def add(self, section: str, src: Source | None, path: tuple[Any, ...], message: str) -> None:
        if src is None:
            where = format_path(path) or "-"
        else:
            where = f"{os.path.relpath(src.file) if os.path.isabs(src.file) else src.file}:{src.line_of(path)}"
            if path:
                where += f": {format_path(path)}"
        self.items.append(Item(section, where, message))

    def section(self, name: str) -> list[Item]:
        return [i for i in self.items if i.section == name]

    def text(self) -> str:
        lines = []
        for name in (UNMAPPED, CUSTOM, VERBATIM, NOTE, MAPPED):
            found = self.section(name)
            if found:
                lines.append(f"{name} ({len(found)}):")
                lines += [f"  {i}" for i in found]
        return "\n".join(lines) + ("\n" if lines else "")


class Secrets:
    """Inline secrets found in the configuration, each written once to a file under secrets/ and referenced by *_file."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}  # reference (relative to the inventory) -> value

    def add(self, value: str, name: str) -> str:
        for ref, known in self.files.items():
            if known == value:
                return ref
        ref = f"secrets/{name}"
        n = 2
        while ref in self.files:
            ref = f"secrets/{name}_{n}"
            n += 1
        self.files[ref] = value
        return ref

    def write(self, folder: Path, force: bool) -> list[str]:
        """Write every secret (mode 600); an existing file with other content is kept unless force. Returns refs written."""
        from generator.errors import UsageError

        clashes = [ref for ref, value in self.files.items()
                   if (folder / ref).exists() and (folder / ref).read_text() != value and not force]
        if clashes:
            raise UsageError(f"secret files exist with other content: {', '.join(clashes)} (use --force to replace them)")
        written = []
        for ref, value in sorted(self.files.items()):
            path = folder / ref
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(value)
            os.chmod(path, 0o600)
            written.append(ref)
        return written
