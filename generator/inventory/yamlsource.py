"""YAML loading that remembers where every value came from, so errors can name a line."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from generator.errors import Problem
from generator.inventory import limits

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
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_YAML = "tag:yaml.org,2002:"
# Plain YAML values only: an explicit tag (!Ref, !!python/object, !!binary, !!set) is an error, not a constructor call.
_SCALAR_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {None, "!", _YAML + "seq", _YAML + "map"}
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?")  # no leading zeros: YAML 1.1 reads 010 as octal
_OPEN = object()  # an anchor whose collection is still being read: an alias to it would be recursive


@functools.lru_cache(maxsize=4096)
def _plain(text: str) -> Any:
    """An unquoted, untagged scalar as YAML 1.1 reads it (`=` and `<<` stay text); cached, as inventories repeat values."""
    if _DECIMAL.fullmatch(text):  # the common numbers, without the resolver's regex tour (same result)
        return float(text) if "." in text else int(text)
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
    if tag not in _SCALAR_TAGS:  # tag:yaml.org,2002:value (a lone `=`) and merge (`<<`, handled where it is a key)
        return text
    if tag == _YAML + "str":
        return text
    return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, text))


class _Stop(Exception):
    """A limit was crossed: stop reading, report what was found so far."""


def load(text: str, file: str) -> Source:
    """Parse text into plain data with a line for every key and item; located problems for anything else.

    One pass over libyaml's events, so nothing is built that the limits
    (generator/inventory/limits.py) do not allow: values are counted as they are
    made, aliases count every value they repeat, nesting is counted with aliases
    expanded, and a recursive alias is an error instead of an endless structure.
    """
    from generator.errors import InventoryError

    builder = _Builder(Source(file, None))
    try:
        builder.run(yaml.parse(text, Loader=_Loader))
    except _Stop:
        pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = f"YAML syntax error: {exc.problem or exc}"
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        builder.problems.append(Problem(file, line, "", message))
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        builder.problems.append(Problem(file, line, "", f"not a YAML text: {exc.reason} (character #x{exc.character:04x})"
                                        if isinstance(exc.character, int) else f"not a YAML text: {exc.reason}"))
    except yaml.YAMLError as exc:
        builder.problems.append(Problem(file, 1, "", f"YAML error: {exc}"))
    if builder.problems:
        raise InventoryError(builder.problems)
    return builder.src


@dataclass
class _Frame:
    kind: str  # "map" or "seq"
    value: Any
    path: Path
    anchor: str | None
    size: int = 1  # values in this collection, itself included, aliases expanded
    height: int = 1  # nesting below and including this collection
    key: Any = None  # a mapping's pending key (after the key, before its value)
    has_key: bool = False
    skip: bool = False  # the pending key was rejected: read its value, keep nothing


class _Builder:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Any] = {}
        self.values = 0
        self.documents = 0
        self.event: Any = None

    def fail(self, event: Any, path: Path, message: str) -> None:
        line = event.start_mark.line + 1 if event.start_mark else 1
        self.problems.append(Problem(self.src.file, line, format_path(path), message))

    def stop(self, event: Any, path: Path, message: str) -> NoReturn:
        self.fail(event, path, message)
        raise _Stop

    def run(self, events: Any) -> None:
        for event in events:
            self.event = event
            if isinstance(event, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    self.stop(event, (), "a second YAML document (---): an inventory is one document")
            elif isinstance(event, yaml.ScalarEvent):
                self.scalar(event)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                self.start(event)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = self.stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.value, frame.size, frame.height)
                self.add(event, frame.value, frame.size, frame.height, *self.slot())
            elif isinstance(event, yaml.AliasEvent):
                self.alias(event)

    # --- where the next value goes ----------------------------------------------------

    def slot(self) -> tuple[Path, bool]:
        """The path of the value about to be read, and whether it is a mapping key."""
        if not self.stack:
            return (), False
        top = self.stack[-1]
        if top.kind == "seq":
            if len(top.value) >= limits.MAX_ENTRIES:
                self.stop(self.event, top.path, f"more than {limits.MAX_ENTRIES:,} entries in one list (an inventory renders "
                                                f"at most {limits.MAX_SERVICES:,} services: split larger fleets into stacks)")
            return top.path + (len(top.value),), False
        if not top.has_key:
            if len(top.value) >= limits.MAX_ENTRIES:
                self.stop(self.event, top.path, f"more than {limits.MAX_ENTRIES:,} entries in one mapping")
            return top.path, True
        return top.path + ((top.key,) if not top.skip else ()), False

    def count(self, event: Any, path: Path, size: int, height: int) -> None:
        self.values += size
        if self.values > limits.MAX_VALUES:
            self.stop(event, path, f"the document holds more than {limits.MAX_VALUES:,} values (aliases counted each time "
                                   "they repeat a value): an inventory is far smaller; is it a YAML alias bomb?")
        if len(self.stack) + height > limits.MAX_DEPTH:
            self.stop(event, path, f"nested deeper than {limits.MAX_DEPTH} levels (aliases expanded): an inventory needs 7")

    def add(self, event: Any, value: Any, size: int, height: int, path: Path, is_key: bool) -> None:
        """Put a value read at path (counted already) into its collection."""
        if not self.stack:
            self.src.data = value
            return
        top = self.stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if top.kind == "seq":
            self.src.lines.setdefault(path, event.start_mark.line + 1)  # a collection's was set at its start
            top.value.append(value)
            return
        if is_key:
            top.has_key, top.skip, top.key = True, True, None
            if isinstance(event, yaml.ScalarEvent) and event.value == "<<" and event.tag is None and event.implicit[0]:
                self.fail(event, path, "YAML merge keys (<<) are not supported: write the keys out")
            elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.fail(event, path, f"mapping keys must be plain strings (got {value!r:.60})")
            elif value in top.value:
                self.fail(event, top.path + (value,), f"duplicate key (first defined on line {self.src.lines.get(top.path + (value,), 0)})")
            else:
                top.key, top.skip = value, False
                self.src.lines[top.path + (value,)] = event.start_mark.line + 1
            return
        if not top.skip:
            top.value[top.key] = value
        top.has_key, top.skip, top.key = False, False, None

    # --- events ---------------------------------------------------------------------------

    def scalar(self, event: Any) -> None:
        path, is_key = self.slot()
        self.count(event, path, 1, 0)
        value: Any = event.value
        if event.tag is None and not event.implicit[0]:
            pass  # quoted: a string
        elif event.tag is None or event.tag == "!":
            try:
                value = _plain(event.value)
            except (ValueError, OverflowError, yaml.YAMLError) as exc:
                self.fail(event, path, f"cannot read {event.value!r:.60}: {exc}")
        elif event.tag in _SCALAR_TAGS:
            node = yaml.ScalarNode(event.tag, event.value, event.start_mark, event.end_mark, event.style)
            try:
                value = _CONSTRUCTOR.construct_object(node)
            except (ValueError, OverflowError, yaml.YAMLError) as exc:
                self.fail(event, path, f"cannot read {event.value!r:.60} as {event.tag.rsplit(':', 1)[-1]}: {exc}")
        else:
            self.fail(event, path, f"unsupported YAML tag {event.tag!r}: write plain values (strings, numbers, true/false, lists, mappings)")
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 0)
        self.add(event, value, 1, 0, path, is_key)

    def start(self, event: Any) -> None:
        path, is_key = self.slot()
        if event.tag not in _COLLECTION_TAGS:
            self.fail(event, path, f"unsupported YAML tag {event.tag!r}: write plain lists and mappings")
        self.count(event, path, 1, 1)
        if self.stack and self.stack[-1].kind == "seq":
            self.src.lines[path] = event.start_mark.line + 1
        elif not self.stack:
            self.src.lines[()] = event.start_mark.line + 1
        kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
        if event.anchor is not None:
            self.anchors[event.anchor] = _OPEN
        self.stack.append(_Frame(kind, {} if kind == "map" else [], path if not is_key else self.stack[-1].path + ("<key>",),
                                 event.anchor))

    def alias(self, event: Any) -> None:
        path, is_key = self.slot()
        found = self.anchors.get(event.anchor)
        if found is None:
            self.stop(event, path, f"unknown alias *{event.anchor} (no &{event.anchor} before it)")
        if found is _OPEN:
            self.stop(event, path, f"recursive alias *{event.anchor}: it repeats a value that contains it")
        value, size, height = found
        self.count(event, path, size, height)
        self.add(event, value, size, height, path, is_key)
