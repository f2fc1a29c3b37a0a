"""`monstack`: thin commands over generator.pipeline; user errors map to exit codes, bugs keep their traceback."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from generator import errors, pipeline, writer
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


@app.command()
def render(inventory: Path = InventoryOpt, out: Path = OutOpt,
           no_check: bool = typer.Option(False, "--no-check", help="Skip promtool/amtool (they are skipped anyway when not installed).")) -> None:
    """Render every configuration file from the inventory, check it, then write it atomically."""
    from generator import checks

    run = not no_check and checks.available("promtool") and checks.available("amtool")
    if not no_check and not run:
        _say("note: promtool/amtool not found; writing without checking (make deps installs them)")
    result, results = pipeline.render(inventory, out, run_checks=run)
    if result.recovered:
        _say(f"note: {result.recovered}")
    for r in results:
        _say(str(r))
    _say(f"rendered {inventory} -> {out}: {len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.removed)} removed")
    for path in result.written:
        _say(f"  wrote   {path}")
    for path in result.removed:
        _say(f"  removed {path}")


@app.command()
def validate(inventory: Path = InventoryOpt) -> None:
    """Check the inventory and everything it renders with promtool and amtool, including the generated rule and routing tests."""
    with tempfile.TemporaryDirectory(prefix="monstack-validate-") as tmp:
        results = pipeline.validate(inventory, Path(tmp))
    for r in results:
        typer.echo(str(r))
    if any(not r.ok for r in results):
        raise errors.CheckFailed(f"{sum(not r.ok for r in results)} check(s) failed")
    typer.echo(f"{inventory}: valid ({len(results)} checks passed)")


@app.command()
def check(inventory: Path = InventoryOpt, out: Path = OutOpt) -> None:
    """Exit 1 when the generated files under --out differ from what the inventory renders (drift)."""
    found = pipeline.drift(inventory, out)
    schema_file = out / SCHEMA_FILE
    if schema_file.exists() and schema_file.read_bytes() != _schema_bytes():
        found.append(writer.Drift(SCHEMA_FILE, "changed"))
    for d in found:
        typer.echo(f"drift: {d}")
    if found:
        raise errors.CheckFailed(f"{len(found)} generated file(s) out of date: run `monstack render` (make render) and commit the result")
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
    parent = write.parent if str(write.parent) else Path(".")
    with writer.locked(parent):  # a render into the same folder removes staging folders it does not own
        staging = writer.stage({write.name: data}, parent)
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


# --- running the stack (generator/runner) -------------------------------------------

StateDirOpt = typer.Option(Path(".monstack"), "--state-dir", help="Runtime state: rendered native configs, data, logs, pids.")
LockWaitOpt = typer.Option(30.0, "--lock-wait", help="Seconds to wait for another monstack command on the same state dir before refusing.")


@app.command()
def up(inventory: Path = InventoryOpt, state_dir: Path = StateDirOpt,
       native: bool = typer.Option(False, "--native", help="Run local processes from the binaries on PATH."),
       compose: bool = typer.Option(False, "--compose", help="Run docker compose (needs a Docker daemon)."),
       sinks: Optional[bool] = typer.Option(None, "--sinks/--no-sinks", help="Native: route every receiver to local Slack/PagerDuty/webhook/SMTP sinks. Default: on when a receiver's secret file is missing."),
       timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for readiness and every target up."),
       port_offset: int = typer.Option(0, "--port-offset", help="Native: shift every port by N (run a second stack beside the first)."),
       lock_wait: float = LockWaitOpt) -> None:
    """Bring the stack up: docker compose when `docker compose` and a daemon work, native processes otherwise.
    On a running stack: the same as `monstack apply`."""
    from generator.runner import commands

    if native and compose:
        raise errors.UsageError("give --native or --compose, not both")
    mode = "native" if native else "compose" if compose else None
    commands.up(inventory, state_dir, mode, sinks, timeout, port_offset, _say, typer.echo, lock_wait)


@app.command()
def apply(state_dir: Path = StateDirOpt,
          timeout: float = typer.Option(120.0, "--timeout", help="Seconds to wait for readiness and every target up."),
          lock_wait: float = LockWaitOpt) -> None:
    """Apply the inventory to the running stack: check referenced files first, reload only what changed, confirm
    each component loaded it, and put the last good configuration back (exit 1) when one rejects it."""
    from generator.runner import commands

    commands.apply(state_dir, timeout, _say, typer.echo, lock_wait)


@app.command()
def down(state_dir: Path = StateDirOpt, lock_wait: float = LockWaitOpt) -> None:
    """Stop exactly what `monstack up` started (native: the recorded processes; compose: docker compose down)."""
    from generator.runner import commands

    commands.down(state_dir, _say, typer.echo, lock_wait)


@app.command()
def status(state_dir: Path = StateDirOpt, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Components, targets up/down and firing alerts of the running stack; exit 1 when something is down."""
    from generator.runner import commands

    commands.status(state_dir, as_json, typer.echo)


@app.command("test-alerts")
def test_alerts(state_dir: Path = StateDirOpt,
                service: Optional[str] = typer.Option(None, "--service", help="Label the alerts with this service (and route by its team)."),
                fault: bool = typer.Option(False, "--fault", help="Inject a real fault into a sample exporter and time the real alert instead."),
                timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds to wait for notifications (default: the longest group_wait plus a margin)."),
                lock_wait: float = LockWaitOpt) -> None:
    """Post a synthetic alert per severity P0-P3 to every Alertmanager until its receivers are notified, report them, resolve them."""
    from generator.runner import commands

    commands.test_alerts(state_dir, service, fault, timeout, _say, typer.echo, lock_wait)


def main() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer turns Ctrl-C into 130 and returns it outside standalone mode
            if code == 130:
                _say("interrupted")
            sys.exit(code)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(130)
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
