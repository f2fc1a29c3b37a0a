"""`python -m generator.runner.mode [native|compose]`: print the mode `monstack up` would choose, and why on stderr.

`make up` asks before it installs anything: the native stack's Debian packages only when the
native runner will run them (their system services would take the ports docker compose publishes).
"""
from __future__ import annotations

import sys

from generator.runner import choose_mode


def main(argv: list[str]) -> int:
    requested = argv[0] if argv and argv[0] else None
    if requested not in (None, "native", "compose"):
        print(f"unknown mode {requested!r}: native or compose", file=sys.stderr)
        return 2
    mode, why = choose_mode(requested)
    print(f"mode: {mode} ({why})", file=sys.stderr)
    print(mode)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
