"""Running the stack: docker compose when it works, native processes otherwise.

`monstack up` picks the mode; `status`, `down` and `test-alerts` find the running
stack through <state>/run/stack.json, whatever mode started it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from generator.errors import UsageError
from generator.runner import compose as compose_runner
from generator.runner.native import NativeStack
from generator.runner.state import read_state

__all__ = ["NativeStack", "choose_mode", "running_stack", "read_state"]


def choose_mode(requested: str | None) -> tuple[str, str]:
    """('compose' | 'native', why)."""
    if requested:
        return requested, f"--{requested} given"
    ok, why = compose_runner.available()
    if ok:
        return "compose", why
    return "native", f"{why}; using native processes"


def running_stack(state_dir: Path, progress: Callable[[str], None] | None = None):
    """The stack a previous `monstack up` recorded in state_dir (a NativeStack or a ComposeStack)."""
    state = read_state(state_dir)
    if state is None:
        raise UsageError(f"no stack is recorded in {state_dir} (start one with `monstack up` or `make up`)")
    if state.get("mode") == "compose":
        return compose_runner.ComposeStack(Path(state["inventory"]), state_dir, progress=progress)
    return NativeStack.from_state(state_dir, progress=progress)
