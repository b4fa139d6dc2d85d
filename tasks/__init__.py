"""Prefect tasks: thin wrappers that call recsys_core / data_checks and move data."""
