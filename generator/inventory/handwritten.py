"""rules.d/ beside the inventory: hand-written and community Prometheus rules, and their promtool tests.

`monstack render` copies them into prometheus/rules/handwritten/ (tests into
prometheus/tests/handwritten/) through the writer, so promtool checks them with
the generated rules and `monstack validate` runs their tests. Read here, with the
inventory, so a broken file is reported like a broken inventory: file, line, path.

`<name>.yml` (or .yaml): a rule file (`groups: [{name, rules: [...]}]`).
`<name>.test.yml` (or .test.yaml): a promtool test file whose rule_files name files of rules.d.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser

from generator import textsafety
from generator.errors import InventoryError, Problem
from generator.inventory import limits
from generator.inventory.yamlsource import Source, load

FOLDER = "rules.d"
_TEST_SUFFIXES = (".test.yml", ".test.yaml")
_RULE_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class RuleTests:
    """A promtool test file of rules.d: its content, and the rule files (by name) it loads."""

    name: str  # prometheus/tests/handwritten/<name>.test.yml
    data: dict[str, Any]
    rule_files: tuple[str, ...]


@dataclass(frozen=True)
class RuleFile:
    """One hand-written rule file, parsed."""

    name: str  # file name without the extension: prometheus/rules/handwritten/<name>.yml
    groups: tuple[dict[str, Any], ...]
    group_lines: tuple[tuple[str, str, int], ...]  # (group name, file, line), to report clashes with generated groups
    tests: tuple[RuleTests, ...] = ()  # the test files whose first rule file this is


def _stem(path: Path) -> str:
    for suffix in _TEST_SUFFIXES + _RULE_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def _read(path: Path, folder: str, problems: list[Problem]) -> Source | None:
    """The file parsed, when it lies in the folder (symlinks followed) and within the inventory's size limit.

    Its text is copied into the rendered tree: a symlink to a file elsewhere (a key, a token) would publish it.
    """
    real = os.path.realpath(path)
    if os.path.commonpath([real, folder]) != folder:
        problems.append(Problem(str(path), 0, "", f"leads out of {FOLDER}/ through a symlink (to {real}): put the file itself in the folder"))
        return None
    try:
        with path.open("rb") as f:
            raw = f.read(limits.MAX_BYTES + 1)
        if len(raw) > limits.MAX_BYTES:
            problems.append(Problem(str(path), 0, "", f"larger than {limits.MAX_BYTES // 2**20} MiB"))
            return None
        return load(raw.decode("utf-8"), str(path))
    except InventoryError as exc:
        problems.extend(exc.problems)
    except UnicodeDecodeError as exc:
        problems.append(Problem(str(path), 0, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
    except OSError as exc:
        problems.append(Problem(str(path), 0, "", f"cannot read: {exc.strerror}"))
    return None


def _parses(expr: Any) -> str | None:
    if not isinstance(expr, str) or not expr.strip():
        return "must be a PromQL expression"
    try:
        promql_parser.parse(expr)
    except (ValueError, TypeError) as exc:
        return f"invalid PromQL: {exc}"
    return None


def _rules(src: Source, problems: list[Problem]) -> tuple[list[dict[str, Any]], list[tuple[str, str, int]]]:
    data = src.data
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        problems.append(src.problem((), "a rule file is a mapping with `groups:` (a list of {name, rules})"))
        return [], []
    groups, names_ = [], []
    for i, g in enumerate(data["groups"]):
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not isinstance(g.get("rules"), list):
            problems.append(src.problem(("groups", i), "a group needs a name and a list of rules"))
            continue
        names_.append((g["name"], src.file, src.line_of(("groups", i, "name"))))
        for j, r in enumerate(g["rules"]):
            path = ("groups", i, "rules", j)
            if not isinstance(r, dict) or ("alert" in r) == ("record" in r):
                problems.append(src.problem(path, "a rule has either `alert:` or `record:`"))
                continue
            if why := _parses(r.get("expr")):
                problems.append(src.problem(path + ("expr",), why))
            labels = r.get("labels") if "alert" in r else None
            for key, value in labels.items() if isinstance(labels, dict) else ():
                # Alert label values are templates too, and they route: a template there is never what routing needs.
                if isinstance(value, str) and (why := textsafety.value_problem(value)):
                    problems.append(src.problem(path + ("labels", key), why))
        groups.append(g)
    return groups, names_


def load_folder(inventory: Path) -> tuple[RuleFile, ...]:
    """The rule files of rules.d beside the inventory (none when it does not exist); InventoryError with every problem."""
    folder = inventory.parent / FOLDER
    if not folder.is_dir():
        return ()
    problems: list[Problem] = []
    rules: dict[str, tuple[list[dict[str, Any]], list[tuple[str, str, int]]]] = {}
    tests: list[tuple[Source, str]] = []
    real_folder = os.path.realpath(folder)
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not path.name.endswith(_RULE_SUFFIXES):
            continue
        src = _read(path, real_folder, problems)
        if src is None:
            continue
        if path.name.endswith(_TEST_SUFFIXES):
            tests.append((src, _stem(path)))
            continue
        if _stem(path) in rules:
            problems.append(Problem(str(path), 1, "", f"two rule files named {_stem(path)} (.yml and .yaml): keep one"))
            continue
        rules[_stem(path)] = _rules(src, problems)
    by_rules: dict[str, list[RuleTests]] = {name: [] for name in rules}
    for src, name in tests:
        data = src.data
        files = data.get("rule_files") if isinstance(data, dict) else None
        if not isinstance(files, list) or not files:
            problems.append(src.problem(("rule_files",), "a test file names the rule files it tests (rule_files: [<name>.yml])"))
            continue
        loaded = []
        for i, f in enumerate(files):
            stem = _stem(Path(str(f)))
            if stem not in rules or "/" in str(f):
                problems.append(src.problem(("rule_files", i), f"{f!r} is not a rule file of {FOLDER}/ (have: {', '.join(sorted(rules)) or 'none'})"))
            else:
                loaded.append(stem)
        if loaded:
            by_rules[loaded[0]].append(RuleTests(name, {k: v for k, v in data.items() if k != "rule_files"}, tuple(loaded)))
    if problems:
        raise InventoryError(problems)
    return tuple(RuleFile(name, tuple(groups), tuple(lines), tuple(by_rules[name])) for name, (groups, lines) in rules.items())
