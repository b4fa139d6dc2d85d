"""Stage 9 tasks: the scorer and seen mask, and one shard of users' top-N.

The sub-flow that maps shards over a task runner is ``flows/scoring.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core import pipeline
from recsys_core.config import NightlyConfig
from recsys_core.data.datasets import DatasetSpec
from recsys_core.evaluation.metrics import catalogue_coverage
from recsys_core.models.base import Recommender
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.scale import ScaleProfile
from recsys_core.serving.explore import ExplorePolicy, explore_top_n, goal_movies
from recsys_core.serving.scorers import to_portable_scorer
from recsys_core.serving.topn import TopN, concat_top_n, recommend_top_n
from recsys_core.serving.trend import TrendChoice, trend_depth
from tasks.artifacts import logger
from tasks.stage import stage


@stage("score-shard")
def score_shard(
    scorer: Any, seen: sp.csr_matrix, users: np.ndarray, top_n: int, memory_budget_mb: int, n_threads: int | None
) -> TopN:
    """One shard of users; the memory budget is per shard."""
    return recommend_top_n(
        scorer, seen, top_n, user_idx=users, memory_budget_bytes=memory_budget_mb * 1024**2, n_threads=n_threads
    )


@stage("prepare-scoring")
def prepare_scoring(model: Recommender, ratings: pd.DataFrame, vocab: IdVocabulary) -> tuple[Any, sp.csr_matrix]:
    """Seen movies come from every cleaned rating, so no one is offered what they rated."""
    seen = to_interactions(ratings, vocab).to_csr()
    logger().info(
        "scoring %s users x %s movies (%s seen pairs masked)",
        f"{vocab.n_users:,}",
        f"{vocab.n_movies:,}",
        f"{seen.nnz:,}",
    )
    return to_portable_scorer(model), seen


@stage("explore-lists")
def explore_lists(tops: list[TopN], top_n: int, policy: ExplorePolicy, n_movies: int) -> list[TopN]:
    """Every shard's ranked candidates cut to ``top_n``, the last ``policy.slots`` positions given to
    movies no list shows yet. Exposure counts across all shards, so this runs once, after
    them; the result keeps the shards' boundaries (one table part per shard)."""
    candidates = concat_top_n(tops)
    explored = explore_top_n(candidates, top_n, policy, n_movies)
    before, after = (catalogue_coverage(t, n_movies) for t in (candidates.movie_idx[:, :top_n], explored.movie_idx))
    goal = None if policy.coverage is None else goal_movies(policy.coverage, n_movies)
    if goal is not None and round(before * n_movies) >= goal:
        logger().info(
            "exploration: the lists already cover %.4f of the catalogue (goal %s): published as the model ranks them",
            before,
            policy.coverage,
        )
    else:
        logger().info(
            "exploration: up to %s of %s slots from each user's top %s (coverage goal %s); catalogue coverage "
            "%.4f -> %.4f",
            policy.slots,
            top_n,
            policy.depth,
            policy.coverage,
            before,
            after,
        )
    if goal is not None and round(after * n_movies) < goal:
        logger().warning(
            "exploration stopped at coverage %.4f, below its goal %s: the users' top %s hold no more movies that "
            "no list shows. A larger --explore-depth reaches further (at more scoring time and memory); "
            "--explore-coverage sets the goal.",
            after,
            policy.coverage,
            policy.depth,
        )
    bounds = np.cumsum([0] + [len(t.user_idx) for t in tops])
    return [
        TopN(explored.user_idx[a:b], explored.movie_idx[a:b], explored.scores[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


@stage("choose-trend")
def choose_trend(
    model: Recommender,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    spec: DatasetSpec,
    profile: ScaleProfile,
    cfg: NightlyConfig,
    cutoff: int,
    work_dir: Path,
) -> TrendChoice:
    """The night's trend weight, chosen on the week before the night (``serving/trend.py``); the
    ranker is fitted once more, on the ratings before that week, when the week has any."""
    k = min(cfg.k, cfg.top_n)  # judged on what the lists show
    if not cfg.trend:
        choice = TrendChoice(reason="turned off (--no-trend)")
    else:
        try:
            choice = pipeline.choose_night_trend(
                model,
                ratings,
                vocab,
                spec=spec,
                scale=profile,
                cutoff=cutoff,
                depth=trend_depth(cfg.top_n, vocab.n_movies, pipeline.explore_candidates(cfg, vocab.n_movies)),
                k=k,
                movies=movies,
                seed=cfg.seed,
                work_dir=work_dir,
            )
        except Exception as exc:  # the trend is an extra: its failure must not cost the night its table
            logger().warning(
                "trend: off, choosing it failed (%s: %s); the lists are the model's ranking. --no-trend skips "
                "this step.",
                type(exc).__name__,
                exc,
            )
            choice = TrendChoice(reason=f"choosing it failed: {type(exc).__name__}: {exc}")
    if choice.reason is not None:
        if not choice.reason.startswith("choosing it failed"):  # that one was said as a warning
            logger().info("trend: off, %s; the lists are the model's ranking", choice.reason)
    elif not choice.active:
        logger().info(
            "trend: off; on the week before the night (%s returning users) the ranking alone scored NDCG@%s %.4f "
            "and no weight did better (ranker refitted in %.1f s)",
            f"{choice.users:,}",
            k,
            choice.ndcg_ranked,
            choice.fit_seconds,
        )
    else:
        logger().info(
            "trend: weight %s on the last %s days' ratings, newness %s; on the week before the night "
            "(%s returning users) NDCG@%s %.4f -> %.4f (ranker refitted in %.1f s)",
            choice.beta,
            choice.days,
            choice.newness,
            f"{choice.users:,}",
            k,
            choice.ndcg_ranked,
            choice.ndcg_trend,
            choice.fit_seconds,
        )
    return choice


@stage("trend-lists")
def trend_lists(
    tops: list[TopN],
    choice: TrendChoice,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    seen: sp.csr_matrix,
    cutoff: int,
    cfg: NightlyConfig,
) -> list[TopN]:
    """Every shard's candidates re-ranked with the night's trend, cut to what exploration reads (or
    ``top_n``). The recent counts are taken once for all shards; the cut is copied, so the
    full-depth arrays are let go."""
    keep = pipeline.explore_candidates(cfg, vocab.n_movies)
    prior = pipeline.night_trend_prior(ratings, vocab, cutoff, choice.days, choice.newness)
    out = []
    for top in tops:
        boosted = pipeline.apply_trend(top, choice, seen, prior)
        out.append(
            TopN(
                boosted.user_idx,
                np.ascontiguousarray(boosted.movie_idx[:, :keep]),
                np.ascontiguousarray(boosted.scores[:, :keep]),
            )
        )
    return out
