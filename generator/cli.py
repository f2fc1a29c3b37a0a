"""`monstack`: thin commands over generator.pipeline; user errors map to exit codes, bugs keep their traceback."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from generator import errors, explain as explain_mod, pipeline, writer
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
