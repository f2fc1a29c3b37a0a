"""YAML loading that remembers where every value came from, so errors can name a line."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from generator.errors import Problem

Path = tuple[Any, ...]


@dataclass
class Source:
    """Parsed YAML plus the line (1-based) of every mapping key and sequence item."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of the deepest known prefix of path (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line:
                return line
        return 1

    def problem(self, path: Path, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# libyaml's parser when the wheel has it (10x faster on large inventories); marks are the same.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str, file: str) -> Source:
    """Parse text; raise InventoryError-ready problems for syntax errors and duplicate keys."""
    from generator.errors import InventoryError

    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = f"YAML syntax error: {exc.problem or exc}"
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise InventoryError([Problem(file, line, "", message)]) from None
    except yaml.YAMLError as exc:
        raise InventoryError([Problem(file, 1, "", f"YAML error: {exc}")]) from None
    src = Source(file, None)
    problems: list[Problem] = []
    constructor = yaml.constructor.SafeConstructor()
    if node is None:
        src.data = None
        return src
    src.lines[()] = node.start_mark.line + 1
    src.data = _build(node, (), src, problems, constructor)
    if problems:
        raise InventoryError(problems)
    return src


def _build(node: yaml.Node, path: Path, src: Source, problems: list[Problem], c: yaml.constructor.SafeConstructor) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(src.file, key_node.start_mark.line + 1, format_path(path), "YAML merge keys (<<) are not supported: write the keys out"))
                continue
            key = c.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, (str, int, float, bool)):
                problems.append(Problem(src.file, key_node.start_mark.line + 1, format_path(path), f"mapping keys must be plain strings (got {key!r})"))
                continue
            child = path + (key,)
            line = key_node.start_mark.line + 1
            if key in out:
                problems.append(Problem(src.file, line, format_path(child), f"duplicate key (first defined on line {src.lines[child]})"))
                continue
            src.lines[child] = line
            out[key] = _build(value_node, child, src, problems, c)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            child = path + (i,)
            src.lines[child] = item.start_mark.line + 1
            items.append(_build(item, child, src, problems, c))
        return items
    return c.construct_object(node, deep=True)
