"""Sync runs: execution, progress, wake-ups, recovery and the run/event repository."""
