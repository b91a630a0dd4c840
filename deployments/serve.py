"""Serve every deployment from one process (the embedded default; `siteflow up` starts it)."""

from __future__ import annotations

from prefect import serve

from deployments import all_deployments


def main() -> None:
    serve(*all_deployments(), print_starting_message=False)


if __name__ == "__main__":
    main()
