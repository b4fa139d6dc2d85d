"""The published table's suite: N rows per user, ranks 1..N, nothing seen, scores ordered."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_checks.runner import SuiteReport, run_suite
from recsys_core.errors import PublishError


def check_recommendations(
    table: pd.DataFrame,
    seen_pairs: pd.DataFrame,
    *,
    top_n: int,
    n_users: int,
    n_movies: int,
    n_catalogue: int | None = None,
) -> SuiteReport:
    """Validate the table against what users rated (``seen_pairs``: user_id, movie_id).

    Expected: every user with at least one unseen rated movie, min(N, unseen) rows each; a user
    who rated every rated movie gets min(N, never-rated catalogue movies) fallback rows.
    """
    n_catalogue = n_movies if n_catalogue is None else n_catalogue
    df = table.reset_index(drop=True)
    ordered = df.sort_values(["user_id", "rank"], kind="stable")
    flags = pd.DataFrame(index=ordered.index)
    flags["rank_is_position"] = ordered.groupby("user_id").cumcount().to_numpy() + 1 == ordered["rank"].to_numpy()
    prev = ordered.groupby("user_id")["score"].shift(1)
    flags["score_not_increasing"] = (prev.isna() | (ordered["score"] <= prev + 1e-6)).to_numpy()
    rows = ordered.groupby("user_id")["user_id"].transform("size")
    seen_count = seen_pairs.groupby("user_id").size()
    user_seen = ordered["user_id"].map(seen_count).fillna(0).to_numpy()
    expected = np.where(
        user_seen >= n_movies, np.minimum(top_n, n_catalogue - n_movies), np.minimum(top_n, n_movies - user_seen)
    )
    flags["rows_per_user_ok"] = rows.to_numpy() == expected
    flags["seen"] = _is_seen(ordered["user_id"].to_numpy(np.int64), ordered["movie_id"].to_numpy(np.int64), seen_pairs)
    checked = pd.concat([df, flags.reindex(df.index)], axis=1)
    # A user who has rated every rated movie gets the fallback list, or none if the catalogue has no other movie.
    exhausted = int((seen_count >= n_movies).sum()) if n_catalogue <= n_movies else 0
    return run_suite(checked, "recommendations", {"top_n": top_n, "n_users": n_users - exhausted})


def _is_seen(user_ids: np.ndarray, movie_ids: np.ndarray, seen_pairs: pd.DataFrame) -> np.ndarray:
    """Is each (user, movie) row among ``seen_pairs``? Only seen pairs of movies the table
    recommends can match, so the others (most ratings, at ml-25m size) are dropped before the
    keys are built and searched."""
    seen_movies = seen_pairs["movie_id"].to_numpy(np.int64)
    keep = np.isin(seen_movies, np.unique(movie_ids))
    big = np.int64(1) << 32
    seen_keys = seen_pairs["user_id"].to_numpy(np.int64)[keep] * big + seen_movies[keep]
    return np.isin(user_ids * big + movie_ids, seen_keys)


def raise_if_invalid(report: SuiteReport, path: str) -> None:
    """Stop publishing when the table breaks its contract; the previous table stays."""
    if not report.success:
        details = "; ".join(o.describe() for o in report.failures())
        raise PublishError(
            f"The new recommendation table at {path} failed its checks ({details}). It was not "
            "published; the previous table and _latest.json are unchanged. This is a bug in the "
            "model or scorer: rerun with --debug and report it."
        )
