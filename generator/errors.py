"""One base error; user errors carry an exit code, anything else is a bug with a traceback."""
from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed: drift, promtool/amtool rejected output, a stack not healthy
EXIT_BAD_INPUT = 2  # the inventory (or a command-line argument) is wrong
EXIT_ENVIRONMENT = 3  # a tool or binary the command needs is missing


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located for a human: file, line, field path."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class MonstackError(Exception):
    exit_code = EXIT_FAILED


class InventoryError(MonstackError):
    """All problems found in an inventory, reported together."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line, p.path, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(MonstackError):
    exit_code = EXIT_BAD_INPUT


class ToolMissing(MonstackError):
    exit_code = EXIT_ENVIRONMENT


class CheckFailed(MonstackError):
    """A checker (promtool, amtool, a drift check, a health check) said no."""

    exit_code = EXIT_FAILED
