"""Parts of the `siteflow` command that live outside `siteflow/cli.py`: what every command
prints and reads (:mod:`.terminal`), the call to the incidents' web API as the logged-in user
(:mod:`.incident_calls`), and command groups of their own (:mod:`.problems`). None of them
imports `siteflow.cli`, so the CLI can wire them in without an import circle; and none loads
Prefect, SQLAlchemy or the tables at import (the CLI's start stays fast, tests/test_cli_startup.py)."""
