"""Shared fixtures: where ../shared/data is, and a skip with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """FACEBENCH_SHARED_DATA, else ../shared/data beside the checkout; None when absent."""
    env = os.environ.get("FACEBENCH_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data; skips the test when it is not beside the checkout."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real benchmark data not found (set FACEBENCH_SHARED_DATA or put shared/data beside the checkout)")
    return path


def require(path: Path) -> Path:
    """Skip unless a specific file or folder of the shared data exists."""
    if not path.exists():
        pytest.skip(f"shared data file missing: {path}")
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `facebench ARGS` in-process through its console entry point: (exit code, stdout, stderr)."""
    from facebench.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tests never write into the user's ~/.cache/facebench: one cache folder per test session."""
    patch = pytest.MonkeyPatch()
    patch.setenv("FACEBENCH_CACHE", str(tmp_path_factory.mktemp("facebench-cache")))
    yield
    patch.undo()
