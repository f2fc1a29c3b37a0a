"""The other side of the hostile corpus: what stays accepted, warnings where a policy may be meant, limits at their edge."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import INVENTORIES
from generator import pipeline, writer
from generator.errors import InventoryError
from generator.inventory import limits, policy, yamlsource

MINIMAL = (INVENTORIES / "good" / "minimal.yaml").read_text()


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    inv = root / "services.yaml"
    inv.write_text(text)
    return inv


def problems(inv: Path) -> list[str]:
    with pytest.raises(InventoryError) as err:
        pipeline.load_model(inv)
    return [f"{p.line}: {p.path}: {p.message}" for p in err.value.problems]


# --- 1. secret files ----------------------------------------------------------------------------


def test_secret_files_inside_the_folder_are_fine_whether_or_not_they_exist_yet(tmp_path: Path):
    inv = write(tmp_path, MINIMAL.replace("secrets/slack_webhook_url", "secrets/team/slack_webhook_url"))
    assert not (tmp_path / "secrets").exists()
    pipeline.load_model(inv)
    (tmp_path / "secrets" / "team").mkdir(parents=True)
    (tmp_path / "secrets" / "team" / "slack_webhook_url").write_text("https://hooks.slack.com/services/x")
    pipeline.load_model(inv)


def test_a_secrets_folder_elsewhere_is_named_in_full_and_may_itself_be_a_symlink(tmp_path: Path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "secrets").symlink_to(vault, target_is_directory=True)
    (vault / "slack_webhook_url").write_text("x")
    # The default folder is a symlink to the vault: files inside it are inside.
    pipeline.load_model(write(tmp_path / "project", MINIMAL))
    # An absolute secrets_dir with absolute references.
    text = MINIMAL.replace("version: 1\n", f"version: 1\nstack: {{secrets_dir: {vault}}}\n").replace(
        "secrets/slack_webhook_url", str(vault / "slack_webhook_url"))
    pipeline.load_model(write(tmp_path / "other", text))
    # ... where the inventory's own secrets/ folder is now outside.
    assert "is outside the secrets folder" in problems(write(tmp_path / "third", MINIMAL.replace(
        "version: 1\n", f"version: 1\nstack: {{secrets_dir: {vault}}}\n")))[0]


def test_extra_scrape_configs_may_name_files_in_the_secrets_folder(tmp_path: Path):
    extra = ("extra_scrape_configs:\n  - {job_name: nodes, static_configs: [{targets: ['n:9100']}], "
             "basic_auth: {username: u, password_file: secrets/nodes_password}, tls_config: {ca_file: secrets/ca.pem}}\n")
    model = pipeline.load_model(write(tmp_path, MINIMAL + extra))
    assert model.extra_scrape_configs[0]["basic_auth"]["password_file"] == "secrets/nodes_password"


def test_a_rules_d_folder_that_is_itself_a_symlink_is_read(tmp_path: Path):
    """Shared community rules kept elsewhere: the folder may be a symlink; its files must lie in it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "queue.yml").write_text("groups: [{name: shared, rules: [{alert: QueueBacklog, expr: 'sum(queue_depth) > 100', "
                                      "labels: {severity: warning}, annotations: {summary: '{{ $value }} jobs'}}]}]\n")
    inv = write(tmp_path / "project", MINIMAL)
    (inv.parent / "rules.d").symlink_to(shared, target_is_directory=True)
    assert [f.name for f in pipeline.load_model(inv).handwritten] == ["queue"]


# --- 2. the writer ------------------------------------------------------------------------------------


def test_stale_files_inside_the_tree_are_still_removed(tmp_path: Path):
    inv = write(tmp_path / "inv", MINIMAL)
    out = tmp_path / "out"
    pipeline.render(inv, out, run_checks=False)
    stale = out / "prometheus" / "rules" / "gone.yml"
    stale.write_text("old\n")
    with (out / ".monstack-generated").open("a") as f:
        f.write(f"{'0' * 64}  prometheus/rules/gone.yml\n")
    result, _ = pipeline.render(inv, out, run_checks=False)
    assert result.removed == ["prometheus/rules/gone.yml"] and not stale.exists()


@pytest.mark.parametrize("entry, inside", [
    ("prometheus/rules/x.yml", True), ("x", True), ("../x", False), ("/etc/passwd", False), ("a/../../x", False),
    ("a/./b", False), ("", False),
])
def test_manifest_entries_must_stay_in_the_tree(entry: str, inside: bool, tmp_path: Path):
    assert (writer.outside(tmp_path, entry) is None) == inside


# --- 3. text ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule, ok", [
    ('{name: Backlog, type: threshold, expr: "sum by (queue) (queue_depth)", threshold: 10, summary: "{{ $labels.queue }}"}', True),
    ('{name: Backlog, type: threshold, expr: "queue_depth > 0", threshold: 10, summary: "{{ $labels.queue }}"}', True),  # unknown: allowed
    ('{name: Backlog, type: threshold, expr: "sum(queue_depth)", threshold: 10, summary: "{{ $labels.queue }}"}', False),
    ('{name: NewKind, type: new_label_value, metric: errors_total, label: kind, summary: "{{ $labels.kind }}"}', True),
    ('{name: NewKind, type: new_label_value, metric: errors_total, label: kind, summary: "{{ $labels.other }}"}', False),
    ('{name: Gone, type: absent, metric: x, summary: "{{ $labels.team }}"}', False),
    ('{name: Gone, type: absent, metric: x, summary: "{{ $labels.service }} {{ \\"{{\\" }}"}', True),
])
def test_labels_in_texts_must_be_labels_the_alert_carries(rule: str, ok: bool, tmp_path: Path):
    inv = write(tmp_path, MINIMAL + f"    rules: [{rule}]\n")
    if ok:
        pipeline.load_model(inv)
    else:
        assert "this alert has no label" in problems(inv)[0]


# --- 4. YAML within the limits --------------------------------------------------------------------------


def test_aliases_and_yaml_1_1_spellings_within_the_limits_load_as_before():
    src = yamlsource.load("a: &x {k: [1, 2]}\nb: *x\nc: =\nd: 1e-3\ne: '0.5'\nf: 010\ng: 2024-01-01\n", "f.yaml")
    assert src.data["b"] == {"k": [1, 2]} and src.data["c"] == "=" and src.data["d"] == "1e-3" and src.data["f"] == 8
    assert src.line_of(("b", "k", 1)) == 2  # inside an alias: the line of the alias
    assert src.line_of(("a", "k", 1)) == 1


def test_a_file_at_the_limits_is_accepted(tmp_path: Path):
    data = yaml.safe_load(MINIMAL)
    svc = data["services"][0]
    svc["labels"] = {f"l{i}": "v" for i in range(limits.MAX_LABELS)}
    svc["scrape"]["targets"] = [f"10.0.{i // 256}.{i % 256}:9100" for i in range(limits.MAX_TARGETS)]
    svc["alerts"] = {"HttpErrorRatioHigh": {"threshold": "1e-3", "for": limits.MAX_FOR}}
    svc["rules"] = [
        {"name": "R", "type": "ratio", "numerator": "a_total", "denominator": "b_total", "threshold": 0.1, "window": limits.MAX_WINDOW},
        {"name": "S", "type": "stalled", "metric": "jobs_total", "for": limits.MAX_WINDOW},
    ]
    model = pipeline.load_model(write(tmp_path, yaml.safe_dump(data)))
    assert model.service("api").alert("HttpErrorRatioHigh").threshold == 0.001


def test_values_and_depth_are_counted_with_aliases_expanded():
    def doc(aliases: int) -> str:  # a list of 1,000 values, then `aliases` aliases of it (1,001 values each)
        return "a: &a [" + ", ".join(["x"] * 1000) + "]\nb: [" + ", ".join(["*a"] * aliases) + "]\n"

    fits = (limits.MAX_VALUES - 1003) // 1001  # the root mapping, a, b and its items
    yamlsource.load(doc(fits), "f.yaml")
    with pytest.raises(InventoryError, match="more than 500,000 values"):
        yamlsource.load(doc(fits + 1), "f.yaml")
    deep = "a: &a " + "[" * 12 + "]" * 12 + "\nb: " + "[" * 12 + "*a" + "]" * 12 + "\n"
    with pytest.raises(InventoryError, match="nested deeper than 24 levels"):
        yamlsource.load(deep, "f.yaml")


# --- 6. policies: warnings where a user may mean it --------------------------------------------------------

ALWAYS = "time_intervals:\n  always: [{weekdays: ['sunday:saturday']}]\n"


@pytest.mark.parametrize("edit, warning", [
    (lambda t: t.replace("P2: {receivers: [slack]}", "P2: {receivers: [slack], mute_time_intervals: [always]}") + ALWAYS,
     "severities.P2.mute_time_intervals[0]: time interval 'always' always matches: P2 alerts never notify anyone"),
    (lambda t: t.replace("version: 1\n", "version: 1\nstack: {allow_always_muted: true}\n") + ALWAYS
     + "mute_time_intervals: [{interval: always, levels: [P0, P1, P2, P3]}]\n",
     "mute_time_intervals[0]: time interval 'always' always matches and mutes P0, P1, P2, P3 of every team: nobody is ever paged"),
    # A window named on its own mutes P1-P3 only: pages still go out.
    (lambda t: t + ALWAYS + "mute_time_intervals: [always]\n",
     "mute_time_intervals[0]: time interval 'always' always matches: P1, P2, P3 alerts of every team never notify anyone"),
    (lambda t: t.replace("P0: {receivers: [slack]}", "P0: {receivers: [slack], active_time_intervals: [office]}")
     + "time_intervals:\n  office: [{weekdays: ['monday:friday']}]\n", "severities.P0.active_time_intervals: P0 notifies only inside office"),
    (lambda t: t + "    slo: {availability: 99.9, window: 2d}\n", "ErrorBudgetBurn1h pages at a burn rate of 0.96, below 1"),
])
def test_policies_a_user_may_mean_are_accepted_with_a_located_warning(edit, warning: str, tmp_path: Path, capsys):
    inv = write(tmp_path, edit(MINIMAL))
    model = pipeline.load_model(inv)
    assert any(warning in str(w) and w.line > 1 for w in model.warnings), model.warnings
    assert f"warning: {inv}:" in capsys.readouterr().err


@pytest.mark.parametrize("entry, always", [
    ({}, True), ({"weekdays": ["sunday:saturday"]}, True), ({"weekdays": ["monday:saturday"]}, False),
    ({"times": [{"start_time": "00:00", "end_time": "23:59"}]}, False), ({"days_of_month": ["1:30"]}, False),
    ({"days_of_month": ["-31:-1"]}, True), ({"days_of_month": ["1:28", "-3:-1"]}, True), ({"months": ["2:12"]}, False),
    ({"years": ["2026:9999"]}, False), ({"location": "Europe/Berlin"}, True),
])
def test_always_matching_intervals_are_recognised(entry: dict, always: bool):
    from generator.inventory.schema import TimeInterval

    assert policy.always(TimeInterval.model_validate(entry)) == always


def test_the_checked_in_inventories_carry_no_warning(capsys):
    root = INVENTORIES.parent.parent
    for inv in [root / "services.yaml", *sorted(root.glob("examples/*/services.yaml"))]:
        assert pipeline.load_model(inv).warnings == (), inv
    assert "warning" not in capsys.readouterr().err
