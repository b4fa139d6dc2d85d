"""Yesterday's lists against today's ratings: the measure a nightly table exists for.

A published night's lists are compared with the ratings that arrived between its cutoff and the
next night's. Every movie a user rated in that window is relevant (binary gains); users count
when they rated anything in the window and had a list. Popularity computed at the earlier night
(most rated before its cutoff, the user's seen movies excluded) is scored the same way.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

ONLINE_METRIC_KEYS = ("hit_rate_at_k", "precision_at_k", "recall_at_k", "ndcg_at_k")


def score_lists(lists: pd.DataFrame, window: pd.DataFrame, k: int, users: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics of top-k ``lists`` (user_id, movie_id, rank) against ``window`` (user_id, movie_id).

    Per user with a list and at least one rating in the window: hit = any of the first k in the
    window; precision = hits / k; recall = hits / movies rated in the window; NDCG with binary
    gains and the ideal DCG over min(k, relevant). Means over those users; ``users`` fixes the
    set instead (a user whose list is empty then counts as a miss), so a baseline is judged on
    the same users as the model.
    """
    top = lists.loc[lists["rank"] <= k, ["user_id", "movie_id", "rank"]]
    relevant = window[["user_id", "movie_id"]].drop_duplicates()
    if users is None:
        users = np.intersect1d(top["user_id"].unique(), relevant["user_id"].unique())
    out: dict[str, Any] = {"k": k, "users": int(len(users))}
    if not len(users):
        return {**out, **{key: None for key in ONLINE_METRIC_KEYS}}
    top = top[top["user_id"].isin(users)]
    relevant = relevant[relevant["user_id"].isin(users)]
    hits = top.merge(relevant.assign(hit=1), on=["user_id", "movie_id"], how="left")
    hits["gain"] = hits["hit"].fillna(0).to_numpy() / np.log2(hits["rank"].to_numpy() + 1.0)
    per_user = hits.groupby("user_id").agg(hits=("hit", "sum"), dcg=("gain", "sum")).reindex(users, fill_value=0)
    n_relevant = relevant.groupby("user_id").size().reindex(users).to_numpy()
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = discounts[np.minimum(n_relevant, k) - 1]
    n_hits = per_user["hits"].to_numpy(float)
    return {
        **out,
        "hit_rate_at_k": float(np.mean(n_hits > 0)),
        "precision_at_k": float(np.mean(n_hits / k)),
        "recall_at_k": float(np.mean(n_hits / n_relevant)),
        "ndcg_at_k": float(np.mean(per_user["dcg"].to_numpy(float) / idcg)),
    }


def popularity_lists(history: pd.DataFrame, users: np.ndarray, k: int) -> pd.DataFrame:
    """Each user's k most-rated movies of ``history`` that the user has not rated in it."""
    ranked = history.groupby("movie_id").size().sort_values(ascending=False, kind="stable").index.to_numpy()
    seen = history[history["user_id"].isin(users)].groupby("user_id")["movie_id"].agg(set)
    rows: list[tuple[int, int, int]] = []
    for user in users:
        mine = seen.get(user, set())
        picks = islice((m for m in ranked if m not in mine), k)  # stops after k: heavy raters cost nothing
        rows.extend((int(user), int(m), r) for r, m in enumerate(picks, start=1))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rank"])


def online_metrics(
    lists: pd.DataFrame,
    ratings: pd.DataFrame,
    *,
    window_start: int,
    window_end: int,
    k: int,
) -> dict[str, Any]:
    """The published lists and popularity (at ``window_start``) scored on ``[window_start, window_end)``.

    ``ratings`` are the raw ratings through ``window_end`` (not averaged: averaging keeps only the
    latest timestamp, which would move a re-rated movie out of the history). A movie the user had
    already rated before the window is not relevant in it: the lists could not hold it.
    """
    pairs = ratings[["user_id", "movie_id"]]
    ts = ratings["timestamp"].to_numpy()
    history = pairs[ts < window_start].drop_duplicates()
    window = pairs[(ts >= window_start) & (ts < window_end)].drop_duplicates()
    window = window.merge(history, on=["user_id", "movie_id"], how="left", indicator=True)
    window = window.loc[window["_merge"] == "left_only", ["user_id", "movie_id"]]
    model = score_lists(lists, window, k)
    users = np.intersect1d(lists["user_id"].unique(), window["user_id"].unique())
    popular = score_lists(popularity_lists(history, users, k), window, k, users=users)
    return {**model, "window_ratings": int(len(window)), "baselines": {"popularity": popular}}
