"""Small helpers for Prefect artifacts and task logging, shared by the stage tasks."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact


def logger() -> Any:
    return get_run_logger()


def fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """Keys are stable so the UI shows the history of one artifact across runs."""
    create_markdown_artifact(key=key, markdown=markdown, description=description)


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    create_table_artifact(key=key, table=rows, description=description)
