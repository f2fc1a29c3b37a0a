"""`monstack`: thin commands over generator.pipeline; user errors map to exit codes, bugs keep their traceback."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from generator import errors, names, pipeline, writer
from generator import explain as explain_mod
from generator.inventory.schema import Inventory

if TYPE_CHECKING:
    from generator import checks

app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
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


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("monstack")
    except metadata.PackageNotFoundError:  # run from a checkout without `pip install -e .`
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"monstack {version()}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context,
          show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                            help="Print monstack's version and exit.")) -> None:
    if ctx.invoked_subcommand is None:
        # No command is a usage error (exit 2), whatever typer/click version decides for no_args_is_help.
        help_text = ctx.get_help()  # typer with rich prints it itself and returns ""
        if help_text:
            typer.echo(help_text)
        _say("Error: missing command (monstack COMMAND --help explains each).")
        raise typer.Exit(errors.EXIT_BAD_INPUT)


@app.command()
def render(inventory: Path = InventoryOpt, out: Path = OutOpt, target: str = TargetOpt,
           no_check: bool = typer.Option(False, "--no-check", help="Skip promtool/amtool (they are skipped anyway when not installed).")) -> None:
    """Render every configuration file from the inventory, check it, then write it atomically."""
    from generator import checks

    targets = _targets(target)
    run = not no_check and checks.available("promtool") and checks.available("amtool")
    if not no_check and not run:
        _say("note: promtool/amtool not found; writing without checking (make deps installs them)")
    if "kubernetes" in targets:
        pipeline.kubernetes_root(out)  # a symlink out of the tree: refused before any target is written
    for t in targets:
        if t == "compose":
            result, results = pipeline.render(inventory, out, run_checks=run)
            root = out
        else:
            result, results = pipeline.render_kubernetes(inventory, out, run_checks=run)
            root = out / names.KUBERNETES_DIR
        if result.recovered:
            _say(f"note: {result.recovered}")
        for r in results:
            _say(str(r))
        _say(f"rendered {inventory} -> {root}: {len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.removed)} removed")
        for path in result.written:
            _say(f"  wrote   {path}")
        for path in result.removed:
            _say(f"  removed {path}")


def _check_line(r: "checks.CheckResult") -> str:
    first, _, rest = str(r).partition("\n")
    return f"{first:<44} {r.seconds:5.1f}s" + (f"\n{rest}" if rest else "")


@app.command()
def validate(inventory: Path = InventoryOpt, target: str = TargetOpt,
             as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Check the inventory and everything it renders with promtool and amtool, including the generated rule and routing tests.

    Prints the checkers' versions (and warns when they are older than what compose deploys), then each check as it finishes."""
    import time

    from generator import versions

    start = time.monotonic()
    model = pipeline.load_model(inventory)
    found = versions.checkers(dict(model.stack.images))
    warnings = [w for c in found if (w := c.warning())]
    if not as_json:
        typer.echo("checkers: " + "; ".join(c.describe() for c in found))
        for w in warnings:
            _say(f"warning: {w}")
    report = None if as_json else (lambda r: typer.echo(_check_line(r)))
    results = []
    for t in _targets(target):
        with tempfile.TemporaryDirectory(prefix="monstack-validate-") as tmp:
            if t == "compose":
                results += pipeline.validate(inventory, Path(tmp), report=report)
            else:
                kube = pipeline.validate_kubernetes(inventory, Path(tmp))
                for r in kube:
                    if report:
                        report(r)
                results += kube
    failed = sum(not r.ok for r in results)
    seconds = time.monotonic() - start
    if as_json:
        typer.echo(json.dumps({
            "inventory": str(inventory), "valid": not failed, "seconds": round(seconds, 1),
            "checkers": [c.to_json() for c in found], "warnings": warnings,
            "checks": [{"name": r.name, "ok": r.ok, "seconds": round(r.seconds, 2), "output": r.output} for r in results],
        }, indent=2))
    if failed:
        raise errors.CheckFailed(f"{failed} check(s) failed")
    if not as_json:
        typer.echo(f"{inventory}: valid ({len(results)} checks passed in {seconds:.1f}s)")


@app.command()
def check(inventory: Path = InventoryOpt, out: Path = OutOpt,
          as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """Exit 1 when the generated files under --out differ from what the inventory renders (drift).

    The Kubernetes tree (OUT/kubernetes) is checked too once it has been rendered there."""
    found = pipeline.drift(inventory, out)
    if pipeline.has_kubernetes(out):
        found += pipeline.drift_kubernetes(inventory, out)
    schema_file = out / SCHEMA_FILE
    if schema_file.exists() and schema_file.read_bytes() != _schema_bytes():
        found.append(writer.Drift(SCHEMA_FILE, "changed"))
    if as_json:
        typer.echo(json.dumps({"inventory": str(inventory), "out": str(out), "ok": not found,
                               "drift": [{"path": d.path, "status": d.status, "message": str(d)} for d in found]}, indent=2))
    else:
        for d in found:
            typer.echo(f"drift: {d}")
    if found:
        hint = " --target all" if any(d.path.startswith(names.KUBERNETES_DIR + "/") for d in found) else ""
        raise errors.CheckFailed(f"{len(found)} generated file(s) out of date: run `monstack render{hint}` (make render) and commit the result")
    if not as_json:
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
            dashboards: bool = typer.Option(False, "--dashboards", help="List dashboards, their panels and queries."),
            state_dir: Path = typer.Option(Path(".monstack"), "--state-dir", help="Links point into the stack recorded here when it runs this inventory."),
            as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout.")) -> None:
    """What is scraped, which alerts fire at which severity, and which receivers they reach."""
    from generator.runner.state import read_state

    model = explain_mod.for_running(pipeline.load_model(inventory), inventory, read_state(state_dir))
    if service is not None and service not in {s.name for s in model.services}:
        raise errors.UsageError(f"no service {service!r} in {inventory} (services: {', '.join(s.name for s in model.services)})")
    if as_json:
        doc = explain_mod.dashboards_data(model, service) if dashboards else explain_mod.services_data(model, service)
        typer.echo(json.dumps(doc, indent=2))
        return
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


# --- silences (generator/silences.py) ------------------------------------------------

silence_app = typer.Typer(help="Silence alerts in the running stack's Alertmanager (add, list, expire), in every mode.",
                          pretty_exceptions_enable=False)
app.add_typer(silence_app, name="silence")
AlertmanagerOpt = typer.Option(None, "--alertmanager-url", help="Alertmanager to talk to (default: the stack `monstack up` started).")


@silence_app.callback(invoke_without_command=True)
def _silence_root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        help_text = ctx.get_help()
        if help_text:
            typer.echo(help_text)
        _say("Error: missing command: add, list or expire.")
        raise typer.Exit(errors.EXIT_BAD_INPUT)


def _alertmanager(url: Optional[str], state_dir: Path) -> str:
    if url:
        return url.rstrip("/")
    from generator.runner.state import read_state

    state = read_state(state_dir)
    if state is None or not (state.get("urls") or {}).get("alertmanager"):
        raise errors.UsageError(f"no stack is recorded in {state_dir}: start one with `make up`, or give --alertmanager-url")
    return str(state["urls"]["alertmanager"]).rstrip("/")


@silence_app.command("add")
def silence_add(matchers: list[str] = typer.Argument(..., help='Label matchers: alertname=TargetDown service=checkout-api, team!=x, instance=~"10\\..*".'),
                duration: str = typer.Option("2h", "--duration", "-d", help="How long, e.g. 30m, 2h, 1d."),
                comment: str = typer.Option(..., "--comment", "-c", help="Why (shown to whoever wonders where the alert went)."),
                author: Optional[str] = typer.Option(None, "--author", help="Who (default: the login name)."),
                state_dir: Path = StateDirOpt, alertmanager_url: Optional[str] = AlertmanagerOpt) -> None:
    """Stop notifications for matching alerts for a while (Alertmanager keeps the alerts)."""
    import getpass

    from generator import silences

    parsed = [silences.parse_matcher(m) for m in matchers]
    am = _alertmanager(alertmanager_url, state_dir)
    sid, until = silences.add(am, parsed, duration, comment, author or getpass.getuser())
    typer.echo(sid)
    _say(f"silenced {' '.join(map(str, parsed))} until {until}; undo with: monstack silence expire {sid}")


@silence_app.command("list")
def silence_list(include_expired: bool = typer.Option(False, "--all", help="Expired silences too."),
                 as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
                 state_dir: Path = StateDirOpt, alertmanager_url: Optional[str] = AlertmanagerOpt) -> None:
    """Active and pending silences (--all: expired ones too)."""
    from generator import silences

    found = silences.list_(_alertmanager(alertmanager_url, state_dir), include_expired)
    typer.echo(json.dumps([s.to_json() for s in found], indent=2) if as_json else silences.table(found))


@silence_app.command("expire")
def silence_expire(ids: list[str] = typer.Argument(..., help="Silence ids (monstack silence list shows them)."),
                   state_dir: Path = StateDirOpt, alertmanager_url: Optional[str] = AlertmanagerOpt) -> None:
    """End silences now: their alerts notify again."""
    from generator import silences

    am = _alertmanager(alertmanager_url, state_dir)
    for sid in ids:
        silences.expire(am, sid)
        _say(f"expired {sid}")


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """click's exception class `name` from click itself and from the copy typer >= 0.25 vendors as typer._click.

    Usage errors are raised from whichever one the installed typer uses; both are caught, so
    a new typer release cannot turn a typo into a traceback.
    """
    import importlib

    found: list[type[BaseException]] = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


def main() -> None:
    click_errors = _click_classes("ClickException")
    exits: tuple[type[BaseException], ...] = (typer.Exit, *_click_classes("Exit"))
    aborts: tuple[type[BaseException], ...] = (typer.Abort, *_click_classes("Abort"))
    try:
        rc = app(standalone_mode=False)
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
    except exits as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except aborts:
        _say("aborted")
        sys.exit(130)
    except click_errors as exc:  # usage errors (exit 2: unknown command or option, bad value), file errors (1)
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", errors.EXIT_BAD_INPUT))
    # Without standalone mode typer/click return the code of an Exit (--help, --version, our own) instead of exiting;
    # typer turns Ctrl-C into 130 that way.
    if rc == 130:
        _say("interrupted")
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
