"""stack.web_auth without a running stack: the inventory field (confined to the secrets folder like every *_file),
what renders from it (password_file references, never the password), and the web config's bcrypt hash (kept while
it matches the password, so `up` rewrites nothing)."""
from __future__ import annotations

from pathlib import Path

import bcrypt
import yaml
from conftest import monstack

from generator import components, names, pipeline, topology, webauth

PASSWORD = "correct-horse-battery-staple-0123"
INVENTORY = """version: 1
stack:
  remote_write: [{name: victoria-metrics, url: "http://victoria-metrics:8428/api/v1/write"}]
  web_auth:
    username: monstack
    password_file: %s
receivers: {slack: {type: slack, webhook_url_file: secrets/slack, channel: "#alerts"}}
severities: {P0: {receivers: [slack]}, P1: {receivers: [slack]}, P2: {receivers: [slack]}, P3: {receivers: [slack]}}
teams: {web: {}}
services:
  - {name: web, team: web, kind: http, scrape: {targets: ["demo-web:8080"]}}
"""


def _inventory(folder: Path, ref: str = "secrets/web_password") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secrets").mkdir(exist_ok=True)
    (folder / "secrets" / "web_password").write_text(PASSWORD + "\n")
    path = folder / "services.yaml"
    path.write_text(INVENTORY % ref)
    return path


def test_a_password_file_outside_the_secrets_folder_is_a_located_error(tmp_path: Path) -> None:
    path = _inventory(tmp_path / "inv", "../elsewhere/web_password")
    r = monstack("render", "--inventory", str(path), "--out", str(tmp_path / "out"), "--no-check")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "stack.web_auth.password_file" in r.stderr and "outside the secrets folder" in r.stderr, r.stderr
    assert "services.yaml:6" in r.stderr, r.stderr  # the line of password_file
    assert not (tmp_path / "out").exists()


def test_an_inline_password_is_refused_with_the_field_to_use(tmp_path: Path) -> None:
    path = _inventory(tmp_path)
    path.write_text(path.read_text().replace("password_file: secrets/web_password", f"password: {PASSWORD}"))
    r = monstack("render", "--inventory", str(path), "--out", str(tmp_path / "out"), "--no-check")
    assert r.returncode == 2 and "password_file" in r.stderr and "stack.web_auth" in r.stderr, r.stderr


def test_without_web_auth_nothing_asks_for_credentials(tmp_path: Path) -> None:
    path = _inventory(tmp_path)
    path.write_text(path.read_text().replace("  web_auth:\n    username: monstack\n    password_file: secrets/web_password\n", ""))
    files = pipeline.build(path).files
    text = b"".join(files.values()).decode()
    assert "basic_auth" not in text and "web.config.file" not in text and "httpAuth" not in text
    assert f"prometheus/{names.WEB_CLIENT_CONFIG}" not in files


def test_every_client_reads_the_password_file_and_no_rendered_file_holds_the_password(tmp_path: Path) -> None:
    path = _inventory(tmp_path)
    for topo in (topology.COMPOSE, topology.native(str(tmp_path))):
        files = pipeline.build(path, topo).files
        for name, data in files.items():
            assert PASSWORD not in data.decode(errors="replace"), name
        password = topo.secret("secrets/web_password")
        auth = {"username": "monstack", "password_file": password}
        prom = yaml.safe_load(files[names.PROMETHEUS_CONFIG])
        assert [am["basic_auth"] for am in prom["alerting"]["alertmanagers"]] == [auth]
        jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
        for job in (names.SELF_PROMETHEUS_JOB, names.SELF_ALERTMANAGER_JOB, names.SELF_VICTORIA_METRICS_JOB):
            assert jobs[job]["basic_auth"] == auth, job
        assert "basic_auth" not in jobs[names.SELF_BLACKBOX_JOB]
        assert [rw["basic_auth"] for rw in prom["remote_write"]] == [auth]
        datasources = yaml.safe_load(files[names.GRAFANA_DATASOURCES])["datasources"]
        assert {ds["name"] for ds in datasources} == {"Prometheus", "Alertmanager", "VictoriaMetrics (long-term)"}
        for ds in datasources:
            assert ds["basicAuth"] is True and ds["basicAuthUser"] == "monstack"
            assert ds["secureJsonData"] == {"basicAuthPassword": f"$__file{{{password}}}"}
        for client in (f"prometheus/{names.WEB_CLIENT_CONFIG}", f"alertmanager/{names.WEB_CLIENT_CONFIG}"):
            assert yaml.safe_load(files[client]) == {"basic_auth": auth}
    # Rendering twice gives the same bytes: the hash is not a rendered file.
    assert pipeline.build(path).files == pipeline.build(path).files


def test_the_compose_flags_read_the_password_and_the_web_config_from_secret_files(tmp_path: Path) -> None:
    model = pipeline.load_model(_inventory(tmp_path))
    compose = yaml.safe_load(pipeline.build(tmp_path / "services.yaml").files[names.COMPOSE_FILE])
    web_config = f"/run/secrets/{names.secret_name(names.WEB_CONFIG_FILE)}"
    for name in ("prometheus", "alertmanager"):
        assert f"--web.config.file={web_config}" in compose["services"][name]["command"]
    vm = compose["services"]["victoria-metrics"]["command"]
    assert f"-httpAuth.password=file:///run/secrets/{names.secret_name('secrets/web_password')}" in vm
    assert compose["secrets"][names.secret_name(names.WEB_CONFIG_FILE)] == {"file": "./" + names.WEB_CONFIG_FILE}
    assert set(components.web_auth_secrets(model)) == {"secrets/web_password", names.WEB_CONFIG_FILE}


def test_the_web_config_keeps_its_hash_while_the_password_matches(tmp_path: Path) -> None:
    first = webauth.web_config("monstack", PASSWORD)
    hashed = yaml.safe_load(first)["basic_auth_users"]["monstack"]
    assert PASSWORD not in first and bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert webauth.web_config("monstack", PASSWORD, first) == first
    changed = webauth.web_config("monstack", "another-password", first)
    assert changed != first and bcrypt.checkpw(b"another-password", yaml.safe_load(changed)["basic_auth_users"]["monstack"].encode())
    assert webauth.web_config("someone", PASSWORD, first) != first  # another user: a new hash for them
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    out = tmp_path / "state" / "web_config.yml"
    assert webauth.write_web_config(out, "monstack", secret) is True
    assert webauth.write_web_config(out, "monstack", secret) is False
    assert out.stat().st_mode & 0o077 == 0


def test_the_kubernetes_objects_ignore_web_auth(tmp_path: Path) -> None:
    """The Operator runs its own Prometheus and Alertmanager, without monstack's web config: no credentials to send."""
    text = b"".join(pipeline.build_kubernetes(_inventory(tmp_path)).files.values()).decode()
    assert "web_password" not in text and "basicAuth" not in text
