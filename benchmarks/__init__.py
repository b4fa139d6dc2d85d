"""Benchmarks that train real models; run as modules (python -m benchmarks.quality)."""
