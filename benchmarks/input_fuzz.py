"""Soak: thousands of generated forms, gate data and decisions against one real stack (issue #10).

    python -m benchmarks.input_fuzz [--examples 5000] [--seed 0]

Why: the property tests in tests/test_input_guard_e2e.py (deployment forms through Prefect's
API and siteflow's web API, decisions through the web API) and tests/test_text_kinds.py (every
gate data model as the web forms check it) run a few examples in CI to keep the suite short.
This runs the same tests with many more examples; every one must be refused with a message or
accepted and run — no 5xx, no Crashed run, the stack up throughout.

How: pytest on those tests in a subprocess with SITEFLOW_INPUT_FUZZ_EXAMPLES=N per Prefect/web
property and SITEFLOW_GATE_DATA_EXAMPLES=N for the gate data (and --hypothesis-seed when given),
on the test suite's own stack (a temp home, its own ports); prints the verdict and the wall
time. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="generated inputs per property")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, to replay a soak")
    args = parser.parse_args()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_input_guard_e2e.py",
        "tests/test_text_kinds.py",
        "-k",
        "generated",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-show-statistics",
    ]
    if args.seed is not None:
        command.append(f"--hypothesis-seed={args.seed}")
    env = {
        **os.environ,
        "SITEFLOW_INPUT_FUZZ_EXAMPLES": str(args.examples),
        "SITEFLOW_GATE_DATA_EXAMPLES": str(args.examples),
    }
    t0 = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env)
    wall = time.monotonic() - t0
    verdict = "every input refused with a message or run" if done.returncode == 0 else "FAILED (see above)"
    print(f"\ninput fuzz: {args.examples} examples per property in {wall:.0f} s: {verdict}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
