"""Soak: many random windows and decision schedules on one real stack (issue #8's property).

    python -m benchmarks.upgrade_soak [--examples 30] [--seed 0]

Why: the property test in tests/test_upgrade_decisions_e2e.py — windows of 2–6 simulated
elements with random step outcomes and a random schedule of decisions (door, order, moment,
racing the deadline, never answered) always complete with exactly the decisions made, each
concluded soon after its own decision — runs 3 examples in CI, each a real window of about a
minute. This runs the same test with many more examples and prints how long each took.

How: `pytest tests/test_upgrade_decisions_e2e.py -k any_schedule` in a subprocess with
SITEFLOW_PROPERTY_EXAMPLES=N (and --hypothesis-seed when given), on the test suite's own
stack (a temp home, its own ports); prints the test's verdict, the wall time and the time
per example. Not part of the test suite.
"""

from __future__ import annotations

import argparse

from benchmarks.pytest_soak import run_soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=30, help="random windows to run (CI runs 3)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed, to replay a soak")
    args = parser.parse_args()
    code, wall = run_soak(
        ["tests/test_upgrade_decisions_e2e.py"],
        "any_schedule",
        {"SITEFLOW_PROPERTY_EXAMPLES": str(args.examples)},
        args.seed,
    )
    verdict = "every window completed as decided" if code == 0 else "FAILED (see above)"
    each = wall / max(1, args.examples)
    print(f"\nsoak: {args.examples} random windows in {wall:.0f} s ({each:.1f} s each): {verdict}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
