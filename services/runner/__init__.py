"""Runs the whole stack as supervised child processes: ``s2s up`` / ``make run``."""
