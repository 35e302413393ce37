"""Baselines the benchmark runs under the same simulator as the project's handler."""
