"""Sharded scoring: threads locally, and a real Dask cluster through prefect-dask."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.nightly import nightly_recommendations
from flows.scoring import score_in_shards, score_task_runner
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.publishing.table import read_latest
from recsys_core.serving.scorers import to_portable_scorer
from recsys_core.serving.topn import concat_top_n, recommend_top_n
from tests.builders import synth_ratings

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]
CONTENT = ["user_id", "rank", "movie_id", "title", "score", "predicted_rating", "model"]


def test_shards_union_equals_one_process(tiny_ml100k, tmp_path):
    common = {"source": str(tiny_ml100k), "top_n": 4, "split": "random", "model": "bias", "quality_gate": False}
    nightly_recommendations(data_dir=str(tmp_path / "one"), n_shards=1, **common)
    manifest, one = read_latest(tmp_path / "one")
    nightly_recommendations(data_dir=str(tmp_path / "three"), n_shards=3, **common)
    manifest3, three = read_latest(tmp_path / "three")
    assert len(list(Path(manifest3["path"]).glob("part-*.parquet"))) == 3
    pd.testing.assert_frame_equal(one[CONTENT].reset_index(drop=True), three[CONTENT].reset_index(drop=True))


@pytest.mark.slow
def test_scoring_stage_on_a_real_dask_cluster():
    distributed = pytest.importorskip("distributed")
    ratings = synth_ratings(n_users=50, n_movies=60, per_user=10)
    vocab = fit_vocabulary(ratings)
    seen = to_interactions(ratings, vocab).to_csr()
    rng = np.random.default_rng(0)

    class Dot:
        def factors(self):
            return rng_users, rng_movies

    rng_users = rng.normal(size=(vocab.n_users, 8)).astype(np.float32)
    rng_movies = rng.normal(size=(vocab.n_movies, 8)).astype(np.float32)
    scorer = to_portable_scorer(Dot())
    local = recommend_top_n(scorer, seen, 5)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        runner = score_task_runner(cluster.scheduler_address, 4)
        parts = score_in_shards.with_options(task_runner=runner)(scorer, seen, 5, 4, 64, None)
    remote = concat_top_n(parts)
    assert len(parts) == 4
    np.testing.assert_array_equal(remote.user_idx, local.user_idx)
    np.testing.assert_array_equal(remote.movie_idx, local.movie_idx)
    np.testing.assert_allclose(remote.scores, local.scores, rtol=1e-6)


@pytest.mark.slow
def test_nightly_flow_scores_on_a_real_dask_cluster(tiny_ml100k, tmp_path):
    """The whole nightly run with its scoring shards on a LocalCluster (worker processes on
    loopback): the same table as scoring with local threads. Reading, cleaning, training and
    publishing stay on the driver (README, "Scale")."""
    distributed = pytest.importorskip("distributed")
    common = {"source": str(tiny_ml100k), "top_n": 4, "split": "random", "model": "bias", "quality_gate": False}
    nightly_recommendations(data_dir=str(tmp_path / "local"), n_shards=2, **common)
    _, local = read_latest(tmp_path / "local")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        nightly_recommendations(
            data_dir=str(tmp_path / "dask"), n_shards=2, dask_address=cluster.scheduler_address, **common
        )
        ran = {prefix for prefix in cluster.scheduler.task_prefixes}  # what the workers executed
    assert any("score" in prefix for prefix in ran), ran
    manifest, remote = read_latest(tmp_path / "dask")
    assert len(list(Path(manifest["path"]).glob("part-*.parquet"))) == 2
    pd.testing.assert_frame_equal(local[CONTENT].reset_index(drop=True), remote[CONTENT].reset_index(drop=True))


def test_exploration_counts_exposure_across_shards(tiny_ml100k, tmp_path):
    common = {
        "source": str(tiny_ml100k),
        "top_n": 4,
        "split": "random",
        "model": "bias",
        "quality_gate": False,
        "explore_slots": 2,
        "explore_depth": 20,
        "explore_coverage": 1.0,  # no goal: fill both slots (these lists already cover 15%)
    }
    nightly_recommendations(data_dir=str(tmp_path / "one"), n_shards=1, **common)
    manifest, one = read_latest(tmp_path / "one")
    nightly_recommendations(data_dir=str(tmp_path / "three"), n_shards=3, **common)
    _, three = read_latest(tmp_path / "three")
    pd.testing.assert_frame_equal(one[CONTENT].reset_index(drop=True), three[CONTENT].reset_index(drop=True))
    plain_params = {**common, "explore_slots": 0}
    nightly_recommendations(data_dir=str(tmp_path / "plain"), n_shards=1, **plain_params)
    _, plain = read_latest(tmp_path / "plain")
    assert one["movie_id"].nunique() > plain["movie_id"].nunique() + 5
    keys = ["user_id", "rank", "movie_id"]
    head, plain_head = (t.loc[t["rank"] <= 2, keys].reset_index(drop=True) for t in (one, plain))
    pd.testing.assert_frame_equal(head, plain_head)  # the first two positions stay as the model ranks them
    metrics = manifest["metrics"]
    assert metrics["explore"]["slots"] == 2 and metrics["explore"]["depth"] == 20
    assert metrics["explore"]["coverage_goal"] is None
    assert metrics["coverage"] > metrics["explore"]["coverage_ranked"]


def test_lists_below_the_coverage_goal_are_explored_up_to_it_and_others_left_alone(tiny_ml100k, tmp_path, caplog):
    common = {"source": str(tiny_ml100k), "top_n": 4, "split": "random", "model": "bias", "quality_gate": False}
    # the default goal (15%): these lists already cover more, so they are published as ranked
    default = nightly_recommendations(data_dir=str(tmp_path / "default"), **common)
    _, as_default = read_latest(tmp_path / "default")
    nightly_recommendations(data_dir=str(tmp_path / "off"), explore_slots=0, **common)
    _, as_ranked = read_latest(tmp_path / "off")
    pd.testing.assert_frame_equal(as_default[CONTENT], as_ranked[CONTENT])
    said = [r.getMessage() for r in caplog.records if "exploration:" in r.getMessage()]
    assert any("already cover" in m and "published as the model ranks them" in m for m in said), said
    ranked_coverage = default["metrics"]["explore"]["coverage_ranked"]
    assert default["metrics"]["coverage"] == ranked_coverage > 0.15
    # a goal above what the ranking covers: explored until the lists reach it
    goal = round(ranked_coverage + 0.2, 2)
    manifest = nightly_recommendations(data_dir=str(tmp_path / "goal"), explore_coverage=goal, **common)
    _, explored = read_latest(tmp_path / "goal")
    metrics = manifest["metrics"]
    assert metrics["explore"] == {**metrics["explore"], "slots": 3, "depth": 80, "coverage_goal": goal}
    assert metrics["explore"]["coverage_ranked"] == ranked_coverage < goal <= metrics["coverage"]
    assert explored["movie_id"].nunique() > as_ranked["movie_id"].nunique()
    with zipfile.ZipFile(tiny_ml100k) as archive:  # the published table itself reaches the goal
        rated = pd.read_csv(archive.open("ml-100k/u.data"), sep="\t", header=None)[1].nunique()
    assert explored["movie_id"].nunique() >= goal * rated - 1e-9
    first = ["user_id", "movie_id"]
    pd.testing.assert_frame_equal(  # the first movie of every list stays the model's
        explored.loc[explored["rank"] == 1, first].reset_index(drop=True),
        as_ranked.loc[as_ranked["rank"] == 1, first].reset_index(drop=True),
    )


def test_a_goal_out_of_reach_is_said_in_the_log(tiny_ml100k, tmp_path, caplog):
    common = {"source": str(tiny_ml100k), "top_n": 4, "split": "random", "model": "bias", "quality_gate": False}
    manifest = nightly_recommendations(
        data_dir=str(tmp_path), explore_coverage=0.99, explore_depth=8, explore_slots=1, **common
    )
    assert manifest["metrics"]["coverage"] < 0.99
    warnings = [r.getMessage() for r in caplog.records if "below its goal 0.99" in r.getMessage()]
    assert warnings and "--explore-depth" in warnings[0], warnings
