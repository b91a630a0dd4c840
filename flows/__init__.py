"""Prefect flows: the processes of docs/process.md as sequences of tasks and gates. No I/O here."""
