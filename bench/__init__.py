"""Benchmarks: they print figures and assert nothing. Run from the repository root: python -m bench.<name>."""
