"""Serve every deployment from one process (the embedded default; `siteflow up` starts it)."""

from __future__ import annotations

from prefect import serve

from deployments import all_deployments


def main() -> None:
    # A restart of siteflow must not pause the nightly-upgrade-window schedule.
    serve(*all_deployments(), print_starting_message=False, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
