"""Command line: ``python -m exporters <name> [--listen HOST:PORT] [--activity X] [--seed N]``."""

from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional, Type

from .common import Exporter, parse_listen, read_control_token, serve
from .demo_business import DemoBusiness
from .demo_web import DemoWeb
from .demo_worker import DemoWorker

EXPORTERS: Dict[str, Type[Exporter]] = {
    DemoWeb.name: DemoWeb,
    DemoWorker.name: DemoWorker,
    DemoBusiness.name: DemoBusiness,
}

DEFAULT_LISTEN = "0.0.0.0:8080"


def _listen(value: str):
    try:
        return parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _activity(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= number <= 10:
        raise argparse.ArgumentTypeError("must be between 0 and 10")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporters",
        description="Run a demo Prometheus exporter with a fault-injection control API.",
    )
    parser.add_argument("name", choices=sorted(EXPORTERS), help="which demo exporter to run")
    parser.add_argument("--listen", type=_listen, default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve on (default {DEFAULT_LISTEN}; port 0 picks a "
                             "free port, reported in the start-up log line)")
    parser.add_argument("--activity", type=_activity, default=1.0, metavar="X",
                        help="multiplier for the simulated background activity "
                             "(default 1.0; 0 disables it)")
    parser.add_argument("--control-token-file", metavar="PATH", default=None,
                        help="enable the fault-injection API (/control) for requests carrying the token in this "
                             "file in the X-Monstack-Control header; without it /control answers 404")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed the simulation's random generator")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    exporter = EXPORTERS[args.name](activity=args.activity, seed=args.seed)
    host, port = args.listen
    token = None
    if args.control_token_file:
        try:
            token = read_control_token(args.control_token_file)
        except (OSError, ValueError) as exc:
            print(f"{args.name}: cannot read the control token: {exc}", file=sys.stderr, flush=True)
            return 2
    try:
        return serve(exporter, host, port, token)
    except OSError as exc:
        print(f"{args.name}: cannot listen on {host}:{port}: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
