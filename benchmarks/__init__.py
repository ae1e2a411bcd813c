"""Benchmarks: plain-Python timing scripts, run as ``python -m benchmarks.<name>``."""
