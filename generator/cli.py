"""`monstack`: thin commands over generator.pipeline; user errors map to exit codes, bugs keep their traceback."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from generator import errors, names, pipeline, writer
from generator import explain as explain_mod
from generator.inventory.schema import Inventory

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="monstack: one services.yaml renders Prometheus, Alertmanager and Grafana, and runs the stack.",
    pretty_exceptions_enable=False,
)

InventoryOpt = typer.Option(Path("services.yaml"), "--inventory", "-i", help="The service inventory.")
OutOpt = typer.Option(Path("."), "--out", "-o", help="Root folder for prometheus/, alertmanager/, grafana/, docs/.")
SCHEMA_FILE = "services.schema.json"


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


TARGETS = ("compose", "kubernetes", "all")
TargetOpt = typer.Option("compose", "--target", "-t", help="compose: prometheus/, alertmanager/, grafana/, compose.yaml; "
                         "kubernetes: Prometheus Operator objects under OUT/kubernetes/; all: both.")


def _targets(target: str) -> tuple[str, ...]:
    if target not in TARGETS:
        raise errors.UsageError(f"--target must be one of {', '.join(TARGETS)} (got {target!r})")
    return ("compose", "kubernetes") if target == "all" else (target,)


@app.command()
def render(inventory: Path = InventoryOpt, out: Path = OutOpt, target: str = TargetOpt,
           no_check: bool = typer.Option(False, "--no-check", help="Skip promtool/amtool (they are skipped anyway when not installed).")) -> None:
    """Render every configuration file from the inventory, check it, then write it atomically."""
    from generator import checks

    targets = _targets(target)
    run = not no_check and checks.available("promtool") and checks.available("amtool")
    if not no_check and not run:
        _say("note: promtool/amtool not found; writing without checking (make deps installs them)")
    for t in targets:
        if t == "compose":
            result, results = pipeline.render(inventory, out, run_checks=run)
            root = out
        else:
            result, results = pipeline.render_kubernetes(inventory, out, run_checks=run)
            root = out / names.KUBERNETES_DIR
        for r in results:
            _say(str(r))
        _say(f"rendered {inventory} -> {root}: {len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.removed)} removed")
        for path in result.written:
            _say(f"  wrote   {path}")
        for path in result.removed:
            _say(f"  removed {path}")


@app.command()
def validate(inventory: Path = InventoryOpt, target: str = TargetOpt) -> None:
    """Check the inventory and everything it renders with promtool and amtool, including the generated rule and routing tests."""
    results = []
    for t in _targets(target):
        with tempfile.TemporaryDirectory(prefix="monstack-validate-") as tmp:
            results += pipeline.validate(inventory, Path(tmp)) if t == "compose" else pipeline.validate_kubernetes(inventory, Path(tmp))
    for r in results:
        typer.echo(str(r))
    if any(not r.ok for r in results):
        raise errors.CheckFailed(f"{sum(not r.ok for r in results)} check(s) failed")
    typer.echo(f"{inventory}: valid ({len(results)} checks passed)")


@app.command()
def check(inventory: Path = InventoryOpt, out: Path = OutOpt) -> None:
    """Exit 1 when the generated files under --out differ from what the inventory renders (drift).

    The Kubernetes tree (OUT/kubernetes) is checked too once it has been rendered there."""
    found = pipeline.drift(inventory, out)
    if pipeline.has_kubernetes(out):
        found += pipeline.drift_kubernetes(inventory, out)
    schema_file = out / SCHEMA_FILE
    if schema_file.exists() and schema_file.read_bytes() != _schema_bytes():
        found.append(writer.Drift(SCHEMA_FILE, "changed"))
    for d in found:
        typer.echo(f"drift: {d}")
    if found:
        hint = " --target all" if any(d.path.startswith(names.KUBERNETES_DIR + "/") for d in found) else ""
        raise errors.CheckFailed(f"{len(found)} generated file(s) out of date: run `monstack render{hint}` (make render) and commit the result")
    typer.echo(f"{out}: generated files match {inventory}")


def _schema_bytes() -> bytes:
    doc = Inventory.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "monstack services.yaml"
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


@app.command()
def schema(write: Optional[Path] = typer.Option(None, "--write", help=f"Write to this file (e.g. {SCHEMA_FILE}) instead of stdout.")) -> None:
    """Print the JSON Schema of services.yaml (for editors: yaml-language-server)."""
    data = _schema_bytes()
    if write is None:
        sys.stdout.write(data.decode())
        return
    staging = writer.stage({write.name: data}, write.parent if str(write.parent) else Path("."))
    (staging / write.name).replace(write)
    staging.rmdir()
    _say(f"wrote {write}")


@app.command()
def explain(service: Optional[str] = typer.Argument(None, help="Only this service."), inventory: Path = InventoryOpt,
            dashboards: bool = typer.Option(False, "--dashboards", help="List dashboards, their panels and queries.")) -> None:
    """What is scraped, which alerts fire at which severity, and which receivers they reach."""
    model = pipeline.load_model(inventory)
    if service is not None and service not in {s.name for s in model.services}:
        raise errors.UsageError(f"no service {service!r} in {inventory} (services: {', '.join(s.name for s in model.services)})")
    text = explain_mod.dashboards(model, service) if dashboards else explain_mod.services(model, service)
    typer.echo(text)


@app.command("import")
def import_(prometheus: Path = typer.Argument(..., help="The prometheus.yml to import; its rule_files are read too."),
            alertmanager: Optional[Path] = typer.Option(None, "--alertmanager", "-a", help="alertmanager.yml (default: the one beside prometheus.yml)."),
            out: Path = typer.Option(Path("services.yaml"), "--out", "-o", help="The inventory to write; secrets go to secrets/ beside it."),
            force: bool = typer.Option(False, "--force", help="Replace an existing inventory and secret files.")) -> None:
    """Write services.yaml from a hand-written Prometheus setup (prometheus.yml, rule files, alertmanager.yml); print what could not be mapped."""
    import generator.importer as importer

    if alertmanager is None and (prometheus.parent / "alertmanager.yml").is_file():
        alertmanager = prometheus.parent / "alertmanager.yml"
    if alertmanager is None:
        raise errors.UsageError("no alertmanager.yml beside the Prometheus configuration: pass --alertmanager PATH")
    result = importer.build(prometheus, alertmanager)
    importer.check(result, out)
    written = importer.write(result, out, force)
    typer.echo(result.report.text(), nl=False)
    for path in written:
        _say(f"wrote {path}")
    _say(f"imported {prometheus} -> {out}: {len(result.inventory['services'])} services, {len(result.inventory['receivers'])} receivers; "
         f"next: monstack validate --inventory {out}")


# --- running the stack (generator/runner) -------------------------------------------

StateDirOpt = typer.Option(Path(".monstack"), "--state-dir", help="Runtime state: rendered native configs, data, logs, pids.")


@app.command()
def up(inventory: Path = InventoryOpt, state_dir: Path = StateDirOpt,
       native: bool = typer.Option(False, "--native", help="Run local processes from the binaries on PATH."),
       compose: bool = typer.Option(False, "--compose", help="Run docker compose (needs a Docker daemon)."),
       sinks: Optional[bool] = typer.Option(None, "--sinks/--no-sinks", help="Native: route every receiver to local Slack/PagerDuty/webhook/SMTP sinks. Default: on when a receiver's secret file is missing."),
       timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for readiness and every target up."),
       port_offset: int = typer.Option(0, "--port-offset", help="Native: shift every port by N (run a second stack beside the first).")) -> None:
    """Bring the stack up: docker compose when `docker compose` and a daemon work, native processes otherwise."""
    from generator.runner import commands

    if native and compose:
        raise errors.UsageError("give --native or --compose, not both")
    mode = "native" if native else "compose" if compose else None
    commands.up(inventory, state_dir, mode, sinks, timeout, port_offset, _say, typer.echo)


@app.command()
def down(state_dir: Path = StateDirOpt) -> None:
    """Stop exactly what `monstack up` started (native: the recorded processes; compose: docker compose down)."""
    from generator.runner import commands

    commands.down(state_dir, _say, typer.echo)


@app.command()
def status(state_dir: Path = StateDirOpt, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Components, targets up/down and firing alerts of the running stack; exit 1 when something is down."""
    from generator.runner import commands

    commands.status(state_dir, as_json, typer.echo)


@app.command("test-alerts")
def test_alerts(state_dir: Path = StateDirOpt,
                service: Optional[str] = typer.Option(None, "--service", help="Label the alerts with this service (and route by its team)."),
                fault: bool = typer.Option(False, "--fault", help="Inject a real fault into a sample exporter and time the real alert instead."),
                timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds to wait for notifications (default: the longest group_wait plus a margin).")) -> None:
    """Post a synthetic alert per severity P0-P3 to Alertmanager, report which receivers were notified, resolve them."""
    from generator.runner import commands

    commands.test_alerts(state_dir, service, fault, timeout, _say, typer.echo)


@app.command()
def backtest(inventory: Path = InventoryOpt, state_dir: Path = StateDirOpt,
             since: str = typer.Option("7d", "--since", help="How much history to replay, ending at --until."),
             until: Optional[str] = typer.Option(None, "--until", help="End of the history (Unix time or RFC 3339); default now."),
             service: Optional[str] = typer.Option(None, "--service", help="Only this service's alerts."),
             alert: Optional[str] = typer.Option(None, "--alert", help="Only alerts of this name."),
             prometheus: Optional[str] = typer.Option(None, "--prometheus", help="Prometheus API with the history (default: the running stack's)."),
             alertmanager: Optional[str] = typer.Option(None, "--alertmanager", help="Alertmanager whose configuration is deployed (default: the running stack's)."),
             long_term: bool = typer.Option(False, "--long-term", help="Read history from the stack's long-term store (VictoriaMetrics) instead of Prometheus."),
             as_json: bool = typer.Option(False, "--json", help="Machine-readable output, with every episode and query."),
             show_all: bool = typer.Option(False, "--all", help="List alerts that never became pending too."),
             fail_on_more_pages: Optional[int] = typer.Option(None, "--fail-on-more-pages", min=0, help="Exit 1 when the working tree's rules page more than N times more than the deployed ones."),
             workers: int = typer.Option(2, "--workers", min=1, help="Range queries run at once.")) -> None:
    """Replay the working tree's alerts over recorded history, beside the deployed rules: fires, firing time, notifications, pages."""
    from generator.backtest import command

    command.run(inventory, since, until, service, alert, prometheus, alertmanager, long_term, state_dir, as_json, show_all,
                fail_on_more_pages, workers, _say, typer.echo)


def main() -> None:
    try:
        app(standalone_mode=False)
    except errors.InventoryError as exc:
        for p in exc.problems:
            _say(str(p))
        _say(f"{len(exc.problems)} problem(s) found; nothing was written")
        sys.exit(exc.exit_code)
    except errors.MonstackError as exc:
        _say(f"error: {exc}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _say("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own exit code (2)
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
