"""The direct YAML writer writes exactly what PyYAML writes: on every rendered file, and on data made up to break it."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from generator import writer
from generator.inventory.loader import load_inventory
from generator.model import resolve
from generator.render import render_all
from generator.topology import COMPOSE

INVENTORIES = [ROOT / "services.yaml", *sorted(ROOT.glob("examples/*/services.yaml")), *sorted(ROOT.glob("tests/inventories/good/*.yaml"))]


@pytest.mark.parametrize("inventory", INVENTORIES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_rendered_yaml_file_is_pyyaml_byte_for_byte(inventory: Path):
    outputs = render_all(resolve(*load_inventory(inventory)), COMPOSE)
    checked = 0
    for path, data in outputs.items():
        if path.endswith((".yml", ".yaml")):
            assert writer.dump_yaml(data) == writer._pyyaml(data), path
            checked += 1
    assert checked > 5


_text = st.one_of(st.text(alphabet=st.sampled_from(list("ab :#-'\"\\\n\t {}[]&*!|>%@`,?é0.1~=<+$()/_")), max_size=12),
                  st.sampled_from(["yes", "null", "1e3", "  ", "0x1f", "2024-01-01", "a\n\n b \n", "x\n ", "=", "<<", "---", "...",
                                   "- a", "? a", ":a", "a:", "a :b", "1_000", "0o17", "+.inf", ".NaN", "Off", "~", "12:30:00",
                                   "2001-12-14t21:59:43.10-05:00", "0b101", "-1", "3.", "a #b", "a# b"]))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False), _text,
                     st.text(max_size=8))
_data = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_text, inner, max_size=4)), max_leaves=25)


@settings(max_examples=1500, deadline=None)
@given(_data)
def test_any_block_structure_is_pyyaml_byte_for_byte(data):
    assert writer.dump_yaml(data) == writer._pyyaml(data)


def test_streamed_staging_writes_the_same_tree_as_serialize_all(tmp_path: Path):
    """monstack render stages file by file (stage_iter); the bytes and the manifest are serialize_all's."""
    from generator import pipeline
    from generator.render import iter_render

    b = pipeline.build(ROOT / "services.yaml")
    staging, paths = writer.stage_iter(iter_render(b.model, COMPOSE), b.model.source, tmp_path)
    assert sorted(paths) == sorted(b.files)
    assert [p for p in paths if (staging / p).read_bytes() != b.files[p]] == []


@pytest.mark.integration
def test_rendering_in_two_processes_writes_the_same_tree(tmp_path: Path):
    """From pipeline.PARALLEL_FROM services on, monstack render forks; the files and manifest are the sequential ones."""
    import yaml

    from generator import pipeline
    from generator.bench import synthetic_inventory
    from generator.render import iter_render

    inv = tmp_path / "services.yaml"
    inv.write_text(yaml.safe_dump(synthetic_inventory(pipeline.PARALLEL_FROM), sort_keys=False))
    model = pipeline.load_model(inv)
    one, paths_one = writer.stage_iter(iter_render(model, COMPOSE), model.source, tmp_path / "one")
    two, paths_two = pipeline.stage(model, COMPOSE, tmp_path / "two")
    assert paths_one == paths_two
    assert [p for p in paths_one if (one / p).read_bytes() != (two / p).read_bytes()] == []


def test_a_ctrl_c_held_during_a_commit_is_raised_by_the_block_itself(monkeypatch: pytest.MonkeyPatch):
    """The held Ctrl-C is raised where the block ends, not sent again: a signal sent again is handled by whatever
    Python code runs next, and a finalizer run by the collector there drops the KeyboardInterrupt (the render then
    finished and exited 0)."""
    sent: list[int] = []
    # As in a terminal: a test runner may run this with SIGINT ignored or blocked.
    old_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    old_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        with pytest.raises(KeyboardInterrupt):
            with writer._signals_held():
                signal.raise_signal(signal.SIGINT)  # held: only recorded
                monkeypatch.setattr(writer.os, "kill", lambda pid, sig: sent.append(sig))
        assert sent == []
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGINT, old_handler)
