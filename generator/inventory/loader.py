"""Read services.yaml into the schema, turning every error into a located Problem."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from generator.errors import InventoryError, Problem
from generator.inventory import limits, references, schema, secrets
from generator.inventory.yamlsource import Source, format_path, load

_TAG_KEYS = ("kind", "type")


def read_source(path: Path) -> Source:
    name = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(limits.MAX_BYTES + 1)  # never more: a huge file (or /dev/zero) is an error, not a memory load
        if len(raw) > limits.MAX_BYTES:
            raise InventoryError([Problem(name, 0, "", f"larger than {limits.MAX_BYTES // 2**20} MiB: an inventory of "
                                                       f"{limits.MAX_SERVICES:,} services takes about 2 MiB")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise InventoryError([Problem(name, 0, "", "no such file (create one, or pass --inventory PATH)")]) from None
    except UnicodeDecodeError as exc:
        raise InventoryError([Problem(name, 0, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    except IsADirectoryError:
        raise InventoryError([Problem(name, 0, "", "is a folder, not a file (pass --inventory PATH/services.yaml)")]) from None
    except OSError as exc:
        raise InventoryError([Problem(name, 0, "", f"cannot read: {exc.strerror}")]) from None
    return load(text, name)


def parse(src: Source) -> schema.Inventory:
    """Validate the parsed YAML against the schema; all problems at once."""
    if src.data is None:
        raise InventoryError([Problem(src.file, 1, "", "the file is empty: it needs at least version, receivers, severities, teams and services")])
    if not isinstance(src.data, dict):
        raise InventoryError([src.problem((), f"the top level must be a mapping of keys (version, receivers, ...), not a {_kind(src.data)}")])
    found = references.problems(src)
    try:
        inv = schema.Inventory.model_validate(src.data)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        found += [_problem(src, err) for err in errs]
        found += [_problem(src, err) for err in _unknown_kind_details(src.data, errs)]
        raise InventoryError(found) from None
    found += secrets.problems(inv, src)
    if found:
        raise InventoryError(found)
    return inv


def load_inventory(path: Path) -> tuple[schema.Inventory, Source]:
    src = read_source(path)
    return parse(src), src


def _unknown_kind_details(data: Any, errs: list[ErrorDetails]) -> list[ErrorDetails]:
    """The other errors of services whose kind is unknown.

    Pydantic stops at the unknown tag; checking the service against the fields every kind
    shares (kind-specific sections accepted as any kind has them) reports the rest in the
    same run instead of after the kind is fixed.
    """
    out: list[ErrorDetails] = []
    services = data.get("services") if isinstance(data, dict) else None
    for err in errs:
        loc = err["loc"]
        if err["type"] != "union_tag_invalid" or len(loc) != 2 or loc[0] != "services" or not isinstance(loc[1], int):
            continue
        service = services[loc[1]] if isinstance(services, list) and 0 <= loc[1] < len(services) else None
        if not isinstance(service, dict):
            continue
        try:
            schema.AnyKindService.model_validate(service)
        except ValidationError as exc:
            for detail in exc.errors(include_url=False):
                if detail["loc"][:1] != ("kind",):
                    out.append({**detail, "loc": loc + tuple(detail["loc"])})
    return out


# --- error translation -------------------------------------------------------


def _problem(src: Source, err: ErrorDetails) -> Problem:
    path, key_error = _data_path(src.data, err["loc"])
    message = _message(err)
    if err["type"] == "inline_secret":
        path = path + (err["ctx"]["key"],)
    if key_error:
        message = f"invalid name {path[-1]!r}: {message}"
    return Problem(src.file, src.line_of(path), format_path(path), message)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], bool]:
    """Pydantic's loc includes union tags and '[key]' markers; keep only steps that exist in the data."""
    path: list[Any] = []
    node = data
    for i, step in enumerate(loc):
        if step == "[key]":
            return tuple(path), True
        if isinstance(node, dict) and i < len(loc) - 1 and any(node.get(k) == step for k in _TAG_KEYS):
            continue  # a union tag (type: threshold) before a field of that member, even where a key has the same name
        if isinstance(node, dict) and step in node or isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            path.append(step)
            node = node[step]
        elif isinstance(node, dict) and any(node.get(k) == step for k in _TAG_KEYS):
            continue  # the name of a discriminated-union member, not a key of the file
        elif i == len(loc) - 1 and isinstance(node, dict):
            path.append(step)  # a missing field
    return tuple(path), False


def _message(err: ErrorDetails) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f" (got {_show(value)})"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        field = err["loc"][-1]
        near = difflib.get_close_matches(str(field), _ALL_FIELDS, n=1, cutoff=0.75)
        return "unknown field" + (f" (did you mean {near[0]!r}?)" if near else "")
    if kind in ("less_than", "less_than_equal", "greater_than", "greater_than_equal"):
        bound = ctx.get("lt", ctx.get("le", ctx.get("gt", ctx.get("ge"))))
        words = {"less_than": "below", "less_than_equal": "at most", "greater_than": "above", "greater_than_equal": "at least"}[kind]
        return f"must be {words} {bound}{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        near = difflib.get_close_matches(str(ctx.get("tag")), tags, n=1, cutoff=0.6)
        return (f"unknown {ctx.get('discriminator', '').strip(chr(39))} {ctx.get('tag')!r}"
                + (f" (did you mean {near[0]!r}?)" if near else "") + f": must be one of {ctx.get('expected_tags')}")
    if kind == "union_tag_not_found":
        return f"missing {ctx.get('discriminator', '').strip(chr(39))}: every entry needs one"
    if kind == "finite_number":
        return f"must be a finite number{got}"
    if kind == "too_long" and "max_length" in ctx:
        actual = ctx.get("actual_length") or (len(value) if isinstance(value, (dict, list, str)) else None)
        return f"at most {ctx['max_length']:,} entries" + (f" (got {actual:,})" if actual is not None else "")
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "inline_secret":
        return err["msg"]
    if kind in ("too_short", "too_long"):
        if ctx.get("min_length") == 1 and not value:
            return "must not be empty"
        return err["msg"].replace("Value", "must be a value").replace("List", "must be a list") + got
    if kind == "string_type" and isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60 \
            and str(err["loc"][-1]).endswith("_time"):
        clock = f"{value // 60:02d}:{value % 60:02d}"
        return (f"must be a string (got {value}): YAML reads an unquoted {clock} as the number {value} (base 60); "
                f'write it in quotes: "{clock}"')
    if kind.endswith("_type") or kind.endswith("_parsing"):
        want = {"string": "a string", "int": "a whole number", "float": "a number", "bool": "true or false", "dict": "a mapping", "list": "a list", "model": "a mapping"}
        base = kind.split("_")[0]
        if base in want:
            return f"must be {want[base]}{got}"
        if kind == "model_attributes_type":
            return f"must be a mapping{got}"
    return f"{err['msg']}{got}"


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {_kind(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), type(value).__name__)


def _field_names(model: type[BaseModel], seen: set[type]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in _models_in(info.annotation):
            names |= _field_names(sub, seen)
    return names


def _models_in(tp: Any) -> list[type[BaseModel]]:
    import typing

    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _models_in(arg)]


_ALL_FIELDS = sorted(_field_names(schema.Inventory, set()))
