"""`recsys api` wires the data dir, host, port and poll interval into uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from typer.testing import CliRunner

from recsys_cli.main import app


def test_api_command_starts_uvicorn_on_the_given_address(monkeypatch, tmp_path: Path) -> None:
    calls: dict = {}

    def fake_run(asgi, **kwargs) -> None:
        calls.update(kwargs, app=asgi)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    args = ["api", "--data-dir", str(tmp_path), "--host", "127.0.0.1", "--port", "8123", "--poll-interval", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123
    store = calls["app"].state.store
    assert store.data_dir == tmp_path.resolve() and store.poll_interval == 2.0
    assert "http://127.0.0.1:8123/" in result.output


def test_api_command_help_lists_its_options() -> None:
    result = CliRunner().invoke(app, ["api", "--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--host", "--port", "--poll-interval"):
        assert option in result.output
