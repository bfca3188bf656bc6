"""Airlock benchmarks: ``bash bench/run.sh`` (see bench/README.md)."""
