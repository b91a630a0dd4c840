"""Run property tests of the suite with many more examples than CI gives them (the soaks).

The suite keeps hypothesis example counts modest so it stays within its time budget; each
soak command runs the same tests on the suite's own stack with the counts raised through
environment variables the tests read, and prints the verdict and the wall time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_soak(paths: list[str], keyword: str, examples: dict[str, str], seed: int | None) -> tuple[int, float]:
    """pytest on `paths` (tests matching `keyword`) with the `examples` variables set; the
    exit code and the wall seconds."""
    command = [sys.executable, "-m", "pytest", *paths, "-k", keyword, "-q", "-p", "no:cacheprovider"]
    command.append("--hypothesis-show-statistics")
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    t0 = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **examples})
    return done.returncode, time.monotonic() - t0
