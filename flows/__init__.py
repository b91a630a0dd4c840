"""Prefect flows: the processes of PROCESS.md as sequences of tasks and gates. No I/O here."""
