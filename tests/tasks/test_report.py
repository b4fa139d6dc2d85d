"""The report task writes plots, report.html, movies.parquet and publishes its artifacts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tasks.report as report_task
from data_checks.gate import GateResult
from recsys_core.atomic import write_json_atomic
from recsys_core.data.readers import Release
from recsys_core.models.baselines import BiasBaseline
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import split_random
from recsys_core.publishing.table import build_table, promote, run_partition, staging_dir, write_manifest, write_part
from recsys_core.runs.context import start_run
from recsys_core.serving.topn import recommend_top_n
from tests.builders import synth_ratings


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Swap the Prefect API calls for recorders (the task logic is what is under test)."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(report_task, "publish_markdown", lambda key, md, desc: seen.update(key=key, markdown=md))
    timings = [{"stage": "train-1a2", "seconds": 3.5, "state": "Completed"}]
    monkeypatch.setattr(report_task, "read_stage_timings", lambda _id: timings)
    monkeypatch.setattr(report_task, "logger", lambda: __import__("logging").getLogger("test"))
    return seen


def test_write_run_report(tmp_path: Path, captured: dict[str, Any]) -> None:
    ratings = synth_ratings().astype({"rating": "float32"})
    movies = pd.DataFrame({"movie_id": np.arange(1, 41, dtype=np.int64), "title": [f"Movie {i}" for i in range(1, 41)]})
    rejects = ratings.head(2).assign(reason="rating off the scale")
    gated = GateResult(ratings=ratings, movies=movies, rejects=rejects, reports=[])
    release = Release(ratings=ratings, movies=movies)
    vocab = fit_vocabulary(ratings)
    model = BiasBaseline().fit(to_interactions(ratings, vocab))
    model.history = {"loss": [2.0, 1.4, 1.2], "val_loss": [2.1, 1.6, 1.5]}
    run = start_run(tmp_path, "20260101T030000Z-abcdef")
    top = recommend_top_n(model, to_interactions(ratings, vocab).to_csr(), 5)
    table = build_table(top, vocab, movies, model, run_id=run.run_id, generated_at=datetime(2026, 1, 1, 3, tzinfo=UTC))
    write_part(table, staging_dir(tmp_path, run.run_id))
    final = promote(staging_dir(tmp_path, run.run_id), run_partition(tmp_path, run.run_id, run.started_at))
    manifest = {"run_id": run.run_id, "path": str(final), "rows": len(table), "users": 30}
    write_manifest(tmp_path, manifest)
    evaluation = {
        "model": model.label,
        "split": "random",
        "metrics": {"rmse": 1.1, "ndcg_at_k": 0.2},
        "baselines": {"popularity": {"ndcg_at_k": 0.15}},
    }
    write_json_atomic(run.folder / "metrics.json", evaluation)  # as the evaluate stage does

    inputs = report_task.summarise_run_inputs.fn(release, gated, ratings, split_random(ratings, seed=1))
    html_path = report_task.write_run_report.fn(run, "ml-100k", inputs, movies, model, evaluation, manifest)

    assert html_path == run.folder / "report.html"
    assert {p.name for p in (run.folder / "plots").glob("*.png")} == {
        "training_history.png",
        "rating_distribution.png",
        "score_distribution.png",
        "metrics_over_runs.png",
    }
    assert len(pd.read_parquet(run.folder / "movies.parquet")) == 40  # titles for `recsys similar`
    md = captured["markdown"]
    assert captured["key"] == "run-report"
    expected = (
        "rejected ratings | 2",
        "rating off the scale",
        "| train-1a2 | 3.5 |",
        str(final),
        "baseline: popularity",
    )
    for part in expected:
        assert part in md, part
    # No file:// link artifacts (the UI cannot open them); report.html stands alone with its plots.
    assert not hasattr(report_task, "create_link_artifact")
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 4 and "src='plots/" not in page
