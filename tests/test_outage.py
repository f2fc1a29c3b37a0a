"""Live: with every default, one failed scrape and one failed health probe never page; a dead service does, fast.

Real Prometheus, Alertmanager, blackbox exporter and demo-web on 127.0.0.1, configured by monstack
render (generator/bench/outage.py, the same code `make bench` measures with). The failures are
counted (the exporter's fail_metrics/fail_health faults), and every wait is on a condition.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator.bench import outage
from generator.bench.common import free_port
from generator.sinks import HttpSink

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not shutil.which("prometheus") or not shutil.which("promtool"), reason="needs prometheus")]


@pytest.fixture
def lane(tmp_path: Path):
    sink = HttpSink("127.0.0.1", 0).start()
    try:
        offset = outage.free_offset(23000)
        lane = outage.Lane("monstack", 0, tmp_path, sink, free_port(), 0, 0)
        outage.configure_monstack(lane, offset)
        blackbox = outage.Processes(tmp_path / "logs")
        blackbox.start("blackbox", [outage._binary("blackbox-exporter"), f"--config.file={tmp_path / 'config/prometheus/blackbox.yml'}",
                                    f"--web.listen-address=127.0.0.1:{lane.blackbox_port}"])
        try:
            yield lane
        finally:
            blackbox.stop_all()
    finally:
        sink.stop()


def test_one_failed_scrape_and_one_failed_probe_never_page(lane, tmp_path: Path):
    result = outage.blip_trial(lane, 0, tmp_path / "logs")
    assert result.get("error") is None, result
    assert result["alerts_fired"] == [] and result["pages"] == 0, result


def test_a_killed_service_pages_within_a_minute(lane, tmp_path: Path):
    trial = outage.kill_trial(lane, 0, None, tmp_path / "logs")  # the bench measures random phases
    assert trial.error is None, trial
    assert trial.page is not None and trial.page < 60, trial
    assert trial.first_alert in outage.ALERTS
