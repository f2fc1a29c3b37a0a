"""The bad-input corpus: every broken inventory exits 2 with located messages, all at once, and writes nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import INVENTORIES, monstack, tree_hash

BAD = INVENTORIES / "bad"

# file -> every problem line it must report ("LINE: path: message start"), and nothing else.
EXPECTED: dict[str, list[str]] = {
    "yaml_syntax": ["18: YAML syntax error: did not find expected key (while parsing a block mapping started on line 4)"],
    "empty": ["1: the file is empty"],
    "comments_only": ["1: the file is empty"],
    "top_level_list": ["1: the top level must be a mapping"],
    "wrong_types": [
        "3: stack.scrape_interval: must be a duration like 30s, 5m, 1h30m or 15d (got 15)",
        "4: stack.replicas.prometheus: must be a whole number (got 'two')",
        "5: stack.external_labels: must be a mapping (got a list)",
    ],
    "unknown_keys": [
        "1: receivers: required field is missing",
        "2: recievers: unknown field (did you mean 'receivers'?)",
        "18: services[0].endpoint: unknown field",
    ],
    "misspelled_receiver": [
        "9: severities.P1.receivers[0]: unknown receiver 'slak' (defined: slack)",
        "11: severities.P3.receivers[1]: unknown receiver 'pager' (defined: slack)",
    ],
    "duplicate_service": ["19: services[1].name: duplicate service 'api' (also services[0])"],
    "availability_out_of_range": [
        "20: services[0].slo.availability: must be below 100",
        "21: services[0].slo.latency.percentile: must be above 0",
    ],
    "bad_durations": [
        "3: stack.scrape_interval: must be a duration like 30s, 5m, 1h30m or 15d (got '5 minutes')",
        "4: stack.evaluation_interval: must be a duration like 30s, 5m, 1h30m or 15d (got '-15s')",
        "11: severities.P0.repeat_interval: must be a duration like 30s, 5m, 1h30m or 15d (got '1.5h')",
    ],
    "invalid_promql": [
        "22: services[0].rules[0].expr: invalid PromQL: unclosed left parenthesis",
        "26: services[0].rules[1].numerator: invalid PromQL: must be a series selector",
        "27: services[0].rules[1].denominator: invalid PromQL:",
    ],
    "bad_label_names": [
        "20: services[0].scrape.labels.__meta_x: invalid name '__meta_x': label names starting with __ are reserved",
        "20: services[0].scrape.labels.tier-name: invalid name 'tier-name': must be a Prometheus label name",
    ],
    "inline_secrets": [
        "5: receivers.slack.webhook_url: secrets must not be written in services.yaml",
        "9: receivers.pager.routing_key: secrets must not be written in services.yaml",
        "16: receivers.mail.auth_password: secrets must not be written in services.yaml",
    ],
    "empty_services": ["14: services: must not be empty"],
    "unknown_team": ["16: services[0].team: unknown team 'webb' (defined: web)"],
    "missing_severity": [
        "7: severities: P2 has no route: every level P0-P3 needs receivers",
        "10: severities.P3.receivers: must not be empty",
    ],
    "target_claimed_twice": ["22: services[1].scrape.targets[0]: target api.internal:3000/metrics is already scraped by service 'api'"],
    "duplicate_key": ["14: teams.web: duplicate key (first defined on line 13)"],
    "unknown_kind": ["15: services[0]: unknown kind 'database': must be one of 'http', 'worker', 'postgres', 'redis', 'host', 'probe', 'custom'"],
    "bad_targets": [
        "18: services[0].scrape.targets[0]: must be host:port",
        "18: services[0].scrape.targets[1]: must be host:port",
        "18: services[0].scrape.targets[2]: must be host:port",
    ],
    "timeout_exceeds_interval": ["18: services[0].scrape.timeout: must not exceed the scrape interval (10s) (got 30s)"],
    "unknown_alert_override": [
        "20: services[0].alerts.HttpErrorRateHigh: unknown alert 'HttpErrorRateHigh' for a http service (known:",
        "21: services[0].alerts.HealthProbeFailing: HealthProbeFailing does not apply to this service: the service has no health URLs",
    ],
    "bad_time_interval": [
        "14: time_intervals.office[0].weekdays[0]: must be a weekday or a range of them",
        "15: time_intervals.office[0].times[0].start_time: must be a time of day HH:MM",
        "16: time_intervals.office[0].location: must be an IANA time zone",
    ],
    "missing_required": [
        "1: version: required field is missing",
        "2: receivers.slack.channel: required field is missing",
    ],
    "secret_in_url": ["9: receivers.bridge.url: must not carry credentials"],
    "wrong_version": ["1: version: must be one of 1 (got 2)"],
    "many_errors": [
        "2: stack.scrape_interval: must be a duration",
        "10: severities.P1.receivers[0]: unknown receiver 'slak'",
        "17: services[0].team: unknown team 'nobody'",
        "20: services[0].slo.availability: must be below 100",
        "21: services[1].name: must be a lowercase name",
    ],
    "bad_names": [
        "13: teams.Web Team: invalid name 'Web Team': must be a lowercase name",
        "15: services[0].name: must be a lowercase name",
        "16: services[0].team: unknown team 'web' (defined: Web Team)",
    ],
    "one_pass": [  # every error of the file in one run: the service with an unknown kind still has its other errors checked
        '13: time_intervals.hours[0].times[0].end_time: must be a string (got 1020): YAML reads an unquoted 17:00 as the number 1020 (base 60); write it in quotes: "17:00"',
        "17: services[0]: unknown kind 'htp' (did you mean 'http'?)",
        "20: services[0].scrape.interval: must be a duration like 30s, 5m, 1h30m or 15d (got '5 minutes')",
        "22: services[0].alerts.HttpErrorRatioHigh.for: must be a duration like 30s, 5m, 1h30m or 15d (got '10 minutes')",
        "23: services[0].alerts.NoSuchAlert: unknown alert 'NoSuchAlert': no kind of service has it",
        "29: services[1].alerts.Bogus: unknown alert 'Bogus' for a worker service",
        "30: services[1].alerts.WorkerStalled.for: must be a duration like 30s, 5m, 1h30m or 15d (got '5 minutes')",
    ],
}


def test_the_corpus_and_the_table_agree():
    on_disk = {p.stem for p in BAD.glob("*.yaml")}
    assert on_disk == set(EXPECTED), "every bad inventory needs its expected problems, and every entry a file"
    assert len(on_disk) >= 20


@pytest.fixture(scope="module")
def rendered_tree(tmp_path_factory) -> Path:
    """A tree holding a good render, which no bad inventory may touch."""
    out = tmp_path_factory.mktemp("out")
    result = monstack("render", "--inventory", str(INVENTORIES / "good" / "minimal.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_inventory_is_rejected_with_every_problem_located(name: str, rendered_tree: Path, tmp_path: Path):
    inventory = tmp_path / "services.yaml"
    shutil.copy(BAD / f"{name}.yaml", inventory)
    before = tree_hash(rendered_tree)
    result = monstack("render", "--inventory", str(inventory), "--out", str(rendered_tree))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stderr.splitlines() if line.startswith(f"{inventory}:")]
    expected = [f"{inventory}:{e}" for e in EXPECTED[name]]
    assert len(problems) == len(expected), "\n".join(problems)
    for want in expected:
        assert any(line.startswith(want) for line in problems), f"missing {want!r} in:\n" + "\n".join(problems)
    assert result.stderr.rstrip().endswith("nothing was written")
    assert tree_hash(rendered_tree) == before, "a rejected inventory changed the output tree"


@pytest.mark.parametrize("command", [["validate"], ["check"], ["explain"]])
def test_every_command_rejects_bad_input_the_same_way(command: list[str], tmp_path: Path):
    result = monstack(*command, "--inventory", str(BAD / "many_errors.yaml"))
    assert result.returncode == 2
    assert "services[0].team: unknown team 'nobody'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_inventory_is_a_clear_error(tmp_path: Path):
    result = monstack("render", "--inventory", str(tmp_path / "nope.yaml"), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "nope.yaml: no such file" in result.stderr
    assert list(tmp_path.iterdir()) == []
