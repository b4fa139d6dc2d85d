"""The nightly flow on the real ml-100k release (skipped when ../shared/datasets is absent)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from flows.nightly import nightly_recommendations
from recsys_core.publishing.table import read_latest

pytestmark = [pytest.mark.realdata, pytest.mark.flow, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]
TOP_N = 10


def test_ml100k_nightly_publishes_a_correct_table(ml100k_real, tmp_path):
    data_dir = tmp_path / "data"
    nightly_recommendations(source=str(ml100k_real), data_dir=str(data_dir), top_n=TOP_N, quality_gate=False)
    manifest, table = read_latest(data_dir)

    assert table["user_id"].nunique() == 943 and len(table) == 943 * TOP_N
    assert manifest["users"] == 943 and manifest["rows"] == 943 * TOP_N
    assert table.groupby("user_id")["rank"].apply(lambda r: sorted(r.tolist()) == list(range(1, TOP_N + 1))).all()
    assert table["title"].notna().all() and (table["title"].str.len() > 0).all()
    ordered = table.sort_values(["user_id", "rank"])
    diffs = ordered.groupby("user_id")["score"].diff().dropna()
    assert (diffs <= 1e-6).all()

    with zipfile.ZipFile(ml100k_real) as zf:
        udata = pd.read_csv(io.BytesIO(zf.read("ml-100k/u.data")), sep="\t", names=["user_id", "movie_id", "r", "t"])
    rated = set(zip(udata.user_id, udata.movie_id, strict=True))
    assert not any((u, m) in rated for u, m in zip(table.user_id, table.movie_id, strict=True))

    metrics = manifest["metrics"]
    for key in ("rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage"):
        assert metrics[key] is not None and np.isfinite(metrics[key]), key
    assert metrics["rmse"] < 1.0
    assert metrics["k"] == 10
