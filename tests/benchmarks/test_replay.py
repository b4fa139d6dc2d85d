"""benchmarks.replay on a tiny synthetic release: nights, the cutoff, stale lists, the report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import replay
from recsys_core import pipeline
from recsys_core.nights import online
from recsys_core.nights.calendar import cutoff_seconds
from tests.builders import build_ml100k_zip

T0 = int(datetime(2020, 1, 6, tzinfo=UTC).timestamp())
DAY = 86_400
N_MOVIES = 30


def weekly_ratings(weeks: int = 6, seed: int = 0) -> pd.DataFrame:
    """Every week some users rate a few movies, and that week's hot movie draws a crowd,
    so popularity (and the popularity model's lists) change from night to night."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(weeks):
        for u in rng.choice(np.arange(1, 41), size=20, replace=False):
            movies = [*rng.choice(np.arange(1, 16), size=3, replace=False), 16 + w]
            for m in movies:
                rows.append(
                    (int(u), int(m), float(rng.integers(1, 6)), T0 + w * 7 * DAY + int(rng.integers(0, 7 * DAY)))
                )
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    return frame.drop_duplicates(["user_id", "movie_id"]).reset_index(drop=True)


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    ratings = weekly_ratings()
    folder = tmp_path / "datasets"
    folder.mkdir()
    build_ml100k_zip(folder / "ml-100k.zip", ratings, n_movies=N_MOVIES, folds=False)
    return folder, ratings


def run(folder: Path, out: Path, *extra: str) -> dict:
    argv = ["--datasets", "ml-100k", "--data-dir", str(folder), "--model", "popularity", "--weeks", "3"]
    return replay.main([*argv, "--out", str(out), *extra])


def test_nights_end_the_day_after_the_last_rating():
    last = int(datetime(1998, 4, 22, 23, 59, 59, tzinfo=UTC).timestamp())
    assert replay.replay_nights(last, 3) == [date(1998, 4, 2), date(1998, 4, 9), date(1998, 4, 16)]
    midnight = int(datetime(1998, 4, 22, tzinfo=UTC).timestamp())
    assert replay.replay_nights(midnight, 1) == [date(1998, 4, 16)]
    with pytest.raises(ValueError):
        replay.replay_nights(last, 0)


def test_training_sees_only_ratings_before_each_cutoff(release, tmp_path, monkeypatch):
    folder, ratings = release
    calls = []
    real_train = pipeline.train

    def spy(name, seen, vocab, **kwargs):
        calls.append(seen[["user_id", "movie_id", "timestamp"]].copy())
        return real_train(name, seen, vocab, **kwargs)

    monkeypatch.setattr(pipeline, "train", spy)
    report = run(folder, tmp_path / "replay.md")
    info = report["datasets"][0]
    nights = replay.replay_nights(int(ratings["timestamp"].max()), 3)
    assert info["nights"] == [n.isoformat() for n in nights]
    trained_nights = [nights[0] - replay.WEEK, *nights]  # the warm-up night first
    # each night trains its model, then (with enough returning users in the week before it) refits its
    # ranker on the ratings before that week, for the trend
    refits = 0
    for night in trained_nights:
        cutoff = cutoff_seconds(night)
        seen = calls.pop(0)
        assert (ratings["timestamp"] >= cutoff).any()  # there was something to leak
        assert seen["timestamp"].max() < cutoff
        assert len(seen) == int((ratings["timestamp"] < cutoff).sum())  # and nothing before it is missing
        before_week = int((ratings["timestamp"] < cutoff - replay.WEEK_SECONDS).sum())
        if calls and len(calls[0]) == before_week and calls[0]["timestamp"].max() < cutoff - replay.WEEK_SECONDS:
            calls.pop(0)
            refits += 1
    assert not calls
    trends = [row["trend"] for row in info["rows"]]
    assert refits >= sum(t["fit_seconds"] is not None for t in trends) >= 1, trends


def test_stale_lists_are_the_previous_nights(release, tmp_path, monkeypatch):
    folder, _ = release
    made, scored = [], []
    real_lists, real_online = replay.night_lists, online.online_metrics

    def lists_spy(*args, **kwargs):
        out = real_lists(*args, **kwargs)
        made.append(out["lists"])
        return out

    def online_spy(lists, ratings, *, window_start, window_end, k):
        scored.append((lists, window_start, window_end))
        return real_online(lists, ratings, window_start=window_start, window_end=window_end, k=k)

    monkeypatch.setattr(replay, "night_lists", lists_spy)
    monkeypatch.setattr(online, "online_metrics", online_spy)
    report = run(folder, tmp_path / "replay.md")
    nights = [date.fromisoformat(n) for n in report["datasets"][0]["nights"]]
    assert len(made) == len(nights) + 1 and len(scored) == 2 * len(nights)
    for i, night in enumerate(nights):
        (fresh, start, end), (stale, stale_start, stale_end) = scored[2 * i], scored[2 * i + 1]
        assert (start, end) == (stale_start, stale_end) == (cutoff_seconds(night), cutoff_seconds(night) + 7 * DAY)
        assert fresh is made[i + 1]
        assert stale is made[i]  # night t - 7 days' lists, unchanged
        assert not fresh.equals(stale)  # the data moves weekly, so this could tell them apart


def test_markdown_and_json_are_written(release, tmp_path):
    folder, _ = release
    out = tmp_path / "results" / "replay.md"
    report = run(folder, out, "--limit-nights", "2")
    text = out.read_text()
    rows = report["datasets"][0]["rows"]
    assert len(rows) == 2 and not report["partial"]
    assert "## ml-100k" in text and "Great Expectations gate is skipped" in text
    assert "Machine:" in text and "--limit-nights 2" in text
    assert all(f"| {r['night']} |" in text for r in rows)
    assert "Mean ratio of model NDCG@10 over popularity NDCG@10" in text
    assert all(r["users_scored"] > 0 and r["model_ndcg_at_k"] is not None for r in rows)
    assert json.loads(out.with_suffix(".json").read_text())["datasets"][0]["rows"] == rows


def test_missing_release_is_skipped_with_a_message(tmp_path, capsys):
    report = replay.main(
        ["--datasets", "ml-latest-small", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r.md")]
    )
    assert report["datasets"] == [] and "ml-latest-small" in report["skipped"]
    assert "skipped" in capsys.readouterr().out
    assert "Skipped:" in (tmp_path / "r.md").read_text()


def test_mean_ratio_leaves_out_nights_where_popularity_scores_zero():
    def row(model, pop, stale):
        return {
            "model_ndcg_at_k": model,
            "popularity_ndcg_at_k": pop,
            "stale_ndcg_at_k": stale,
            "model_hit_rate_at_k": None,
            "popularity_hit_rate_at_k": None,
            "stale_hit_rate_at_k": None,
            "train_s": 1.0,
            "total_s": 2.0,
        }

    s = replay.summarise([row(0.2, 0.1, 0.1), row(0.1, 0.2, None), row(0.3, 0.0, 0.3), row(None, None, None)])
    assert s["ratio_nights"] == 2
    assert s["mean_ratio"] == pytest.approx((2.0 + 0.5) / 2)
    assert s["ratio_of_means"] == pytest.approx(0.15 / 0.15)
    assert s["model_ndcg_at_k"] == pytest.approx(0.2) and s["model_ndcg_at_k_nights"] == 3
    assert s["stale_ndcg_at_k"] == pytest.approx(0.2) and s["stale_ndcg_at_k_nights"] == 2
    assert (s["nights_model_above_popularity"], s["nights_model_below_popularity"]) == (2, 1)
    assert s["nights_popularity_zero"] == 1
