"""The whole nightly flow against the session's Prefect test API, on synthetic archives."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.nightly import nightly_recommendations
from recsys_cli.main import app
from recsys_core.publishing.table import read_latest
from tests.builders import build_ml100k_zip, synth_ratings, zip_bytes

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

FAST = {"split": "random", "quality_gate": False, "refit_full": False, "model": "bias"}


def _tree_digest(root: Path) -> dict[str, str]:
    """Every file under the published folder with its SHA-256 (locks and staging excluded)."""
    out = {}
    for p in sorted((root / "recommendations").rglob("*")):
        if p.is_file() and "_staging" not in p.parts and not p.name.startswith("."):
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def published(tmp_path: Path, http_root) -> tuple[Path, str]:
    """A data dir holding one published run downloaded over HTTP from a local server."""
    base_url, www = http_root
    build_ml100k_zip(www / "ml-100k.zip")
    data_dir = tmp_path / "data"
    nightly_recommendations(source=f"{base_url}/ml-100k.zip", data_dir=str(data_dir), top_n=5, **FAST)
    return data_dir, base_url


def test_flow_downloads_trains_and_publishes(published):
    data_dir, _ = published
    manifest, table = read_latest(data_dir)
    ratings = synth_ratings()
    assert manifest["users"] == ratings["user_id"].nunique() == table["user_id"].nunique()
    assert manifest["rows"] == len(table) == 5 * manifest["users"]
    assert manifest["top_n"] == 5 and manifest["model"] == "bias@v1"
    assert {"rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage", "k"} <= set(
        manifest["metrics"]
    )
    assert sorted(table["rank"].unique().tolist()) == [1, 2, 3, 4, 5]
    seen = set(zip(ratings.user_id, ratings.movie_id, strict=True))
    assert not any((u, m) in seen for u, m in zip(table.user_id, table.movie_id, strict=True))
    assert (data_dir / "cache" / "ml-100k.zip").is_file()
    run_folder = Path(manifest["run_folder"])
    assert (run_folder / "metrics.json").is_file() and (run_folder / "validation.html").is_file()


def test_second_run_reuses_cache_and_keeps_both_runs(published):
    data_dir, base_url = published
    first, _ = read_latest(data_dir)
    nightly_recommendations(source=f"{base_url}/ml-100k.zip", data_dir=str(data_dir), top_n=5, **FAST)
    second, table = read_latest(data_dir)
    assert second["run_id"] != first["run_id"]
    assert Path(first["path"]).is_dir()  # the earlier run is still readable
    assert len(table) == second["rows"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_source_is_one_clear_error_and_loses_nothing(published):
    data_dir, _ = published
    before = _tree_digest(data_dir)
    url = f"http://127.0.0.1:{_free_port()}/ml-100k.zip"
    result = CliRunner().invoke(app, ["run", "--source", url, "--data-dir", str(data_dir), "--split", "random"])
    assert result.exit_code == 1
    assert url in result.output and "--source" in result.output
    assert "Traceback" not in result.output
    assert _tree_digest(data_dir) == before
    assert not list((data_dir / "cache").glob("*.part"))


def test_archive_that_is_not_a_release(published, tmp_path):
    data_dir, _ = published
    before = _tree_digest(data_dir)
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(zip_bytes({"notes/readme.txt": "hello"}))
    result = CliRunner().invoke(app, ["run", "--source", str(bogus), "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "u.data" in result.output and "--dataset" in result.output
    notzip = tmp_path / "notzip.zip"
    notzip.write_text("this is not a zip")
    result = CliRunner().invoke(app, ["run", "--source", str(notzip), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "not a zip" in result.output
    assert _tree_digest(data_dir) == before


def test_bad_rows_are_quarantined_and_the_run_goes_on(tmp_path):
    ratings = synth_ratings()
    bad = pd.DataFrame([{"user_id": 1, "movie_id": 999, "rating": 4.0, "timestamp": 880_000_000}])
    archive = build_ml100k_zip(tmp_path / "ml-100k.zip", pd.concat([ratings, bad], ignore_index=True))
    manifest = nightly_recommendations(
        source=str(archive), data_dir=str(tmp_path / "d"), top_n=3, reject_threshold=0.05, **FAST
    )
    rejects = pd.read_parquet(Path(manifest["run_folder"]) / "rejects.parquet")
    assert rejects["movie_id"].tolist() == [999]
    assert "not in the movies table" in rejects["reason"].iloc[0]


def test_quality_gate_failure_keeps_the_previous_table(published):
    data_dir, base_url = published
    before = _tree_digest(data_dir)
    with pytest.raises(Exception, match="quality gate"):
        nightly_recommendations(
            source=f"{base_url}/ml-100k.zip",
            data_dir=str(data_dir),
            top_n=5,
            split="random",
            model="popularity",
            quality_gate=True,
            refit_full=False,
        )
    assert _tree_digest(data_dir) == before


def test_flow_parameters_default_to_the_config_defaults():
    """The flow's parameters are NightlyConfig's fields with NightlyConfig's defaults (no drift)."""
    import inspect

    from recsys_core.config import NightlyConfig

    signature = inspect.signature(nightly_recommendations.fn)
    renamed = {"n_shards": "shards"}
    for name, parameter in signature.parameters.items():
        field = NightlyConfig.model_fields[renamed.get(name, name)]
        default = field.default if not isinstance(field.default, Path) else str(field.default)
        assert parameter.default == default, name
    assert {renamed.get(n, n) for n in signature.parameters} == set(NightlyConfig.model_fields)
