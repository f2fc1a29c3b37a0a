"""promtool and amtool on the content of the Kubernetes objects, not on the compose files they came from.

`extract` reads the rendered objects back: every PrometheusRule's groups
become a rule file, the Alertmanager config Secret's keys become
alertmanager/, and the generated rule and routing tests (from the compose
render) are pointed at those files. Then the same checkers run as for compose.
"""
from __future__ import annotations

import posixpath
import subprocess
from pathlib import Path
from typing import Any, Mapping

import yaml

from generator import checks, names, writer

SOURCE = "the Kubernetes objects"


def _objects(files: Mapping[str, bytes], kind: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path, data in sorted(files.items()):
        if path.endswith(".yaml"):
            doc = yaml.safe_load(data)
            if isinstance(doc, dict) and doc.get("kind") == kind:
                out.append((path, doc))
    return out


def extract(files: Mapping[str, bytes], compose: Mapping[str, bytes]) -> dict[str, bytes]:
    """A compose-shaped tree (rules, tests, alertmanager config, routing tests) whose rules and config come from the objects."""
    out: dict[str, bytes] = {}
    group_file: dict[str, str] = {}
    for path, rule in _objects(files, "PrometheusRule"):
        stem = path[len(names.KUBE_RULES_DIR) + 1: -len(".yaml")]  # <service>, or handwritten/<file> for rules.d/
        groups = rule["spec"]["groups"]
        out[names.rules_file(stem)] = writer.serialize(names.rules_file(stem), {"groups": groups}, SOURCE)
        for g in groups:
            assert g["name"] not in group_file, f"rule group {g['name']} in two PrometheusRules"
            group_file[g["name"]] = stem
    for path, data in compose.items():
        if path.startswith(names.RULE_TESTS_DIR + "/"):
            test = yaml.safe_load(data)
            # The files the test loads, as the objects hold them: by the groups it evaluates, or (tests of rules.d/, which
            # name no group order) by the groups of each rule file it names.
            named = [posixpath.normpath(posixpath.join(posixpath.dirname(path), f)) for f in test["rule_files"]]
            groups = test.get("group_eval_order") or [g["name"] for f in named for g in yaml.safe_load(compose[f])["groups"]]
            stems = list(dict.fromkeys(group_file[g] for g in groups))
            test["rule_files"] = [posixpath.relpath(names.rules_file(s), posixpath.dirname(path)) for s in stems]
            out[path] = writer.serialize(path, test, SOURCE)
        elif path == names.ROUTING_TESTS:
            out[path] = data
    secrets = [doc for _, doc in _objects(files, "Secret") if names.KUBE_ALERTMANAGER_CONFIG_KEY in doc.get("stringData", {})]
    assert len(secrets) == 1, f"expected one Alertmanager config Secret, found {len(secrets)}"
    folder = names.ALERTMANAGER_CONFIG.rsplit("/", 1)[0]
    for key, text in secrets[0]["stringData"].items():
        if key == names.KUBE_ALERTMANAGER_CONFIG_KEY:
            cfg = yaml.safe_load(text)
            # The pod reads the templates at the config Secret's mount; here they lie beside the config (relative paths resolve there).
            prefix = names.KUBE_ALERTMANAGER_CONFIG_MOUNT + "/"
            cfg["templates"] = [t[len(prefix):] if t.startswith(prefix) else t for t in cfg.get("templates", [])]
            out[names.ALERTMANAGER_CONFIG] = writer.dump_yaml(cfg).encode()
        else:
            out[f"{folder}/{key}"] = text.encode()
    return out


def static_checks(root: Path) -> list[checks.CheckResult]:
    promtool, amtool = checks.tool("promtool"), checks.tool("amtool")
    rules = sorted(str(p.relative_to(root)) for pattern in ("*.yml", f"{names.HANDWRITTEN}/*.yml") for p in (root / names.RULES_DIR).glob(pattern))
    return [
        _run("promtool check rules (PrometheusRules)", [promtool, "check", "rules", *rules], root),
        _run("amtool check-config (Alertmanager config Secret)", [amtool, "check-config", names.ALERTMANAGER_CONFIG], root),
    ]


def all_checks(root: Path) -> list[checks.CheckResult]:
    return static_checks(root) + checks.rule_tests(root) + checks.routing_tests(root)


def _run(name: str, argv: list[str], cwd: Path) -> checks.CheckResult:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
    return checks.CheckResult(name, proc.returncode == 0, (proc.stdout + proc.stderr).strip())
