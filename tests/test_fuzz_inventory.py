"""Fuzzed inventories: whatever a user writes, monstack answers with a model or located problems, never a crash.

The strategies here serve two runs: these tests under the "ci" Hypothesis profile
(tests/conftest.py: derandomized, no example database, so a lucky seed cannot
turn CI red), and `make fuzz` (tests/fuzz.py), which draws 100,000 inventories
at random and also renders and checks the accepted ones with promtool and amtool.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import INVENTORIES, ROOT
from generator import writer
from generator.errors import InventoryError, Problem
from generator.inventory.loader import load_inventory
from generator.model import Model, resolve
from generator.render import render_all
from generator.topology import COMPOSE

# The minimal inventory, the real one, the import round trip's hard cases (tiers, rate windows, minimum traffic,
# scoped maintenance windows, Slack bot tokens, severity_map, increase rules) and the Kubernetes example
# (extra_scrape_configs, the kubernetes section): every field has a base to be mutated in.
BASES = [yaml.safe_load(p.read_text()) for p in (INVENTORIES / "good" / "minimal.yaml", ROOT / "services.yaml",
                                                 ROOT / "tests" / "import" / "round-trip" / "services.yaml",
                                                 INVENTORIES / "good" / "kubernetes.yaml")]
# Debian's promtool is built without Kubernetes service discovery: the long run (tests/fuzz.py) checks the compose
# output with it, so the example's pod job discovers through DNS here.
for _job in BASES[-1]["extra_scrape_configs"]:
    if _job.pop("kubernetes_sd_configs", None) is not None:
        _job["dns_sd_configs"] = [{"names": ["pods.monitoring.svc"], "type": "A", "port": 9100}]

# What an attacker (or a tired user) writes: templates, traversals, zero and huge durations, regexes only Python
# reads, PromQL that is not a selector, YAML 1.1 look-alikes, and numbers at the edges of floats.
HOSTILE_TEXT = [
    "{{ .Evil }}", "{{ $labels.nosuch }}", "{{ $value", "}}", "line\nbreak", "tab\t", "../../etc/shadow", "/etc/shadow",
    "secrets/../../x", "secrets/x", "0s", "0d", "1000000w", "8d", "1h", "5\\d\\d\"", ".*", "(?=x)", "a++", "[[:alpha:]]",
    "up[5m]", "vector(1)", "x_total{service=\"other\"}", "a_total or vector(1)", "sum by (q) (x)", "(" * 40 + "x" + ")" * 40,
    "=", "<<", "yes", "on", "'", "\"", "`", "<b>", "x" * 300, "sunday:saturday", "saturday:sunday", "00:00", "24:00",
    "17:00", "1:-1", "-31:-1", "january:december", "1970:9999", "https://x.example/{{ .A }}", "http://h:1/a b", "#x", "P0",
]
HOSTILE_NUMBERS = [0, -1, 0.0, 1e308, -1e308, math.inf, -math.inf, math.nan, 10**30, 1e-300, 2**63, True, False]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["15s", "-1m", "P0", "P9", "http", "slack", "#x", "a:1", "sum(", "100"]),
                    st.sampled_from(HOSTILE_TEXT), st.sampled_from(HOSTILE_NUMBERS))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(root, path, value):
    node = root
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def mutated(draw):
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add", "copy"]))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8) | st.sampled_from(list(_field_names())))] = draw(values)
        elif action == "copy":  # a value from elsewhere in the inventory, where it may not belong
            _set(data, path, copy.deepcopy(_get(data, draw(st.sampled_from(paths)))))
        else:
            _set(data, path, draw(values))
    return data


# Edits that keep an inventory plausible, so that many fuzzed inventories are accepted and get rendered: valid
# durations and numbers, flipped flags, and free text full of quotes, backticks, new lines and `<b>` where text is free.
_DURATIONS = ["30s", "1m", "5m", "10m", "1h", "6h", "1d", "7d"]
_TEXT = ["it's \"quoted\"", "back`tick`", "two\nlines", "<b>bold</b> & co", "{ braces } $x", "{{ $value }} now",
         "{{ $labels.service }} is slow", "plain"]


@st.composite
def plausible(draw):
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    leaves = [p for p in _paths(data) if p and not isinstance(_get(data, p), (dict, list))]
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(leaves))
        value, key = _get(data, path), path[-1]
        if isinstance(value, bool):
            value = not value
        elif isinstance(value, (int, float)) and key != "version":
            value = draw(st.sampled_from([0, 1, 2, 0.5, 0.05, 0.999, 10, 90, 99.5, 300]))
        elif isinstance(value, str) and value[:1].isdigit() and value[-1:] in "smhdwy":
            value = draw(st.sampled_from(_DURATIONS))
        elif key in ("summary", "description"):
            value = draw(st.sampled_from(_TEXT))
        _set(data, path, value)  # other text (names, URLs, PromQL) stays: the hostile strategies change those
    svc = draw(st.sampled_from(data["services"]))
    if draw(st.booleans()):
        svc["labels"] = {"owner": draw(st.sampled_from(["it's \"ops\"", "`ops`", "a b <c>", "ops"]))}
    return data


def _get(root, path):
    for step in path:
        root = root[step]
    return root


def _field_names():
    from generator.inventory.loader import _ALL_FIELDS

    return _ALL_FIELDS


# YAML-level edits on the dumped text: anchors, aliases, tags, merge keys, documents, control characters.
_TEXT_EDITS = ["&a ", "*a", "*b", "!Ref ", "!!binary ", "!!python/object:os.system ", "<<: {x: 1}\n", "---\n", "? [a, b]\n",
               "\x07", "\t", "{", "[", "]", "}", ": ", "- ", "'", "\"", "&a [*a]", "&b {k: *b}", "!!set {a}", "=", "\ufeff"]


@st.composite
def yaml_text(draw):
    text = yaml.safe_dump(draw(mutated()), sort_keys=False, allow_unicode=True)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(_TEXT_EDITS) | st.text(max_size=4))
        text = text[:at] + edit + text[at + draw(st.integers(0, 2)):]
    return text


# --- what every fuzzed inventory must give --------------------------------------------------------------


def outcome(path: Path) -> Model | InventoryError:
    """A model, or the InventoryError with every problem located in `path`; anything else propagates."""
    try:
        inv, src = load_inventory(path)
        return resolve(inv, src)
    except InventoryError as exc:
        assert exc.problems
        for p in exc.problems:
            assert isinstance(p, Problem) and p.file == str(path) and p.message, p
            assert p.line >= 1 or not p.path, p  # only whole-file problems (not UTF-8, too large) have no line
        return exc


def rendered(model: Model) -> dict[str, bytes]:
    files = writer.serialize_all(render_all(model, COMPOSE), model.source)
    assert files and all(isinstance(b, bytes) for b in files.values())
    return files


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutated())
def test_any_mutation_gives_a_model_that_renders_or_located_problems(data, tmp_path_factory):
    path: Path = tmp_path_factory.mktemp("fuzz") / "services.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = outcome(path)
    if isinstance(result, Model):
        rendered(result)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=plausible())
def test_plausible_edits_mostly_give_models_that_render(data, tmp_path_factory):
    path: Path = tmp_path_factory.mktemp("fuzz") / "services.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    result = outcome(path)
    if isinstance(result, Model):
        rendered(result)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=yaml_text())
def test_yaml_edits_give_a_model_or_located_problems(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "services.yaml"
    path.write_text(text, encoding="utf-8")
    outcome(path)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
@example(text="=")
@example(text="!Ref x")
@example(text="a: &a [*a]")
@example(text="a: *b")
@example(text="a: 2024-02-30")
@example(text="<<: {}")
@example(text="? [a]\n: b")
@example(text="a: 1\n---\nb: 2")
@example(text="a: " + "9" * 5000)
def test_arbitrary_text_never_crashes_the_loader(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "services.yaml"
    path.write_text(text)
    try:
        load_inventory(path)
    except InventoryError as exc:
        assert exc.problems
