"""The pipeline in plain Python: prepare -> train/evaluate -> score.

The nightly flow's tasks, `recsys evaluate` and the benchmarks call these functions, so a
model is trained and judged the same way everywhere. The data gate (Great Expectations, in
``data_checks``) is passed in as a function: the library itself never imports it.

    prepare:   read the release, gate it, merge titles and average duplicates, encode ids,
               choose the scale profile
    train:     fit a registry model with the profile's settings, timed
    refit:     the candidate's choices (epochs, lambda, blend weights) trained on every rating
    evaluate:  the model and the baselines on the same split
    score:     every user x every unseen movie, top-N (``scoring.recommend_top_n``)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.readers import Release, read_release
from recsys_core.evaluation.evaluate import evaluate_baselines, evaluate_model
from recsys_core.memory import release_unused_memory
from recsys_core.models import create_model
from recsys_core.models.base import Recommender
from recsys_core.prep.cleaning import clean_ratings
from recsys_core.prep.encoding import IdVocabulary, fit_vocabulary
from recsys_core.prep.interactions import timestamps_of, to_interactions
from recsys_core.prep.splitting import Split, holdout_validation, make_split
from recsys_core.scale import ScaleProfile, choose_scale, model_params
from recsys_core.serving.explore import ExplorePolicy
from recsys_core.serving.trend import (
    TrendChoice,
    boost_top_n,
    choose_trend,
    recent_counts,
    total_counts,
    trend_depth,
    trend_prior,
)

log = logging.getLogger(__name__)

# data_checks.gate.check_raw_data: (ratings, movies, **options) -> object with .ratings, .movies
Gate = Callable[..., Any]
RefitMode = Literal["fixed", "warm", "search"]
REFIT_MODES: tuple[str, ...] = ("fixed", "warm", "search")
# A warm refit trains this share of the candidate's epochs from its weights. A quarter kept the
# published model's u1 RMSE and ua NDCG@10 within the seeds' spread of a full search
# (benchmarks/results/refit.md) at a quarter of the cost. Movies the candidate never saw (all
# their ratings in its test part) start from their initial weights and get only these epochs.
WARM_EPOCH_SCALE = 0.25


@dataclass(frozen=True)
class Trained:
    """A fitted model and what its fit measured."""

    model: Recommender
    seconds: float
    n_ratings: int
    refit_mode: str | None = None  # how a refit on all ratings was trained (None: not a refit)


@dataclass(frozen=True)
class Prepared:
    """Clean, encoded data ready to split and train on, with the run's scale profile."""

    release: Release
    gated: Any
    ratings: pd.DataFrame
    vocab: IdVocabulary
    scale: ScaleProfile


def gate_release(release: Release, spec: DatasetSpec, gate: Gate, *, reject_threshold: float, **options: Any) -> Any:
    """The raw-data contract: contract breaks raise, bad rows are quarantined by ``gate``."""
    return gate(
        release.ratings,
        release.movies,
        rating_values=spec.rating_values,
        reject_threshold=reject_threshold,
        dataset=spec.name,
        malformed=release.malformed,
        **options,
    )


def merge_and_average(ratings: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    """Titles joined, duplicate (user, movie) ratings averaged, the latest timestamp kept."""
    return clean_ratings(ratings, movies)


def decide_scale(
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    *,
    forced: str = "auto",
    refit_full: bool = True,
    refit_max_ratings: int | None = None,
) -> ScaleProfile:
    """The run's scale profile, from the shape of the cleaned ratings (logged by the caller)."""
    return choose_scale(
        len(ratings),
        vocab.n_users,
        vocab.n_movies,
        forced=forced,
        refit_full=refit_full,
        refit_max_ratings=refit_max_ratings,
    )


def prepare(
    archive: Path,
    spec: DatasetSpec,
    gate: Gate,
    *,
    reject_threshold: float = 0.01,
    scale: str = "auto",
    docs_dir: Path | None = None,
) -> Prepared:
    """Everything before the split, as the nightly flow does it."""
    release = read_release(archive, spec.layout)
    gated = gate_release(release, spec, gate, reject_threshold=reject_threshold, docs_dir=docs_dir)
    ratings = merge_and_average(gated.ratings, gated.movies)
    vocab = fit_vocabulary(ratings)
    return Prepared(release, gated, ratings, vocab, decide_scale(ratings, vocab, forced=scale))


def split_ratings(ratings: pd.DataFrame, release: Release, name: str, seed: int, test_fraction: float = 0.2) -> Split:
    return make_split(ratings, name, folds=release.folds, test_fraction=test_fraction, seed=seed)


def train(
    name: str,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    *,
    spec: DatasetSpec,
    scale: ScaleProfile,
    movies: pd.DataFrame | None = None,
    seed: int = 0,
    validation_fraction: float = 0.05,
    params: dict[str, Any] | None = None,
    work_dir: Path | None = None,
    start_from: Recommender | None = None,
    warm_epoch_scale: float = WARM_EPOCH_SCALE,
) -> Trained:
    """Fit ``name`` on ``ratings``; early stopping uses a slice cut from these ratings only.

    The scale profile's settings for this model are its parameters (recorded in model.json,
    ``scale_profile`` holds the whole profile); ``params`` override them. ``work_dir`` (the run
    folder) receives the Parquet pairs that streamed pair models read through tf.data.
    ``validation_fraction=0`` trains on every rating (the settings must then fix every choice);
    ``start_from`` warm-starts the parts that can from a fitted model's weights; they train
    ``warm_epoch_scale`` of their epochs (the parts that cannot train all of theirs).
    """
    settings = {**model_params(scale, name), "scale_profile": scale.summary(), **(params or {})}
    model = create_model(name, rating_min=spec.rating_min, rating_max=spec.rating_max, seed=seed, **settings)
    model.set_work_dir(work_dir)
    if model.uses_item_features:
        from recsys_core.prep.features import build_item_features

        if movies is None:
            raise ValueError(f"model {name} needs the movies table for its item features")
        model.set_item_features(build_item_features(movies, vocab))
    if start_from is not None and not model.start_from(start_from, warm_epoch_scale):
        # Expected for closed forms, samplers and models without a warm start: not a warning.
        log.info("%s does not warm-start from %s: it fits from scratch with its fixed settings", name, start_from.label)
    fit_part, val_part = (
        holdout_validation(ratings, validation_fraction, seed=seed)
        if validation_fraction > 0
        else (ratings, ratings.iloc[:0])
    )
    fit_data = to_interactions(fit_part, vocab)
    val_data = to_interactions(val_part, vocab) if len(val_part) else None
    del fit_part, val_part  # the holdout's frame copies (0.6 GB at 25M) are not needed while fitting
    # Free pages the allocators keep from frames let go before this fit go back to the OS first.
    release_unused_memory()
    start = time.perf_counter()
    model.fit(fit_data, val_data)
    seconds = time.perf_counter() - start
    held_out = f" (+{len(val_data):,} held out for validation)" if val_data is not None else ""
    log.info(
        "trained %s on %s ratings%s in %.1f s (scale %s)",
        model.label,
        f"{len(fit_data):,}",
        held_out,
        seconds,
        scale.name,
    )
    return Trained(model, seconds, len(ratings))


def refit(
    candidate: Recommender,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    *,
    spec: DatasetSpec,
    scale: ScaleProfile,
    mode: RefitMode = "fixed",
    warm_epoch_scale: float = WARM_EPOCH_SCALE,
    movies: pd.DataFrame | None = None,
    seed: int = 0,
    work_dir: Path | None = None,
) -> Trained:
    """The model to publish: ``candidate`` (fitted on the split's train part) refit on every rating.

    ``fixed`` trains once per night: the candidate's choices (the epochs early stopping picked,
    EASE's lambda, the blend weights) on all ratings, with no holdout and no search.
    ``warm`` also starts from the candidate's weights and trains ``warm_epoch_scale`` of its
    epochs. ``search`` repeats the whole search on a 5% holdout of all ratings. A model that
    cannot fix its choices (``fixed_settings()`` is None) searches, and the log says so.
    """
    settings = None if mode == "search" else candidate.fixed_settings()
    if settings is None:
        if mode != "search":
            log.warning("refit: %s cannot fix its choices; searching again on a holdout", candidate.label)
        trained = train(
            candidate.name, ratings, vocab, spec=spec, scale=scale, movies=movies, seed=seed, work_dir=work_dir
        )
        return Trained(trained.model, trained.seconds, trained.n_ratings, "search")
    trained = train(
        candidate.name,
        ratings,
        vocab,
        spec=spec,
        scale=scale,
        movies=movies,
        seed=seed,
        validation_fraction=0.0,
        params=settings,
        work_dir=work_dir,
        start_from=candidate if mode == "warm" else None,
        warm_epoch_scale=warm_epoch_scale,
    )
    return Trained(trained.model, trained.seconds, trained.n_ratings, mode)


def ranking_part(model: Recommender) -> Recommender:
    """The part of ``model`` that orders the lists: ``combined``'s ranker, else the model itself."""
    from recsys_core.models.combined import Combined

    return model.ranker if isinstance(model, Combined) else model


def choose_night_trend(
    model: Recommender,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    *,
    spec: DatasetSpec,
    scale: ScaleProfile,
    cutoff: int,
    depth: int,
    k: int = 10,
    movies: pd.DataFrame | None = None,
    seed: int = 0,
    work_dir: Path | None = None,
) -> TrendChoice:
    """The night's trend weight (``serving/trend.py``), chosen on the week before ``cutoff``.

    ``model`` is the night's fitted model; only its ranking part is fitted again, on the ratings
    before that week, with its choices fixed (searched again on a holdout if it cannot fix them).
    """
    timestamps = timestamps_of(ratings)
    if timestamps is None:
        return TrendChoice(reason="the ratings carry no timestamps")
    # Only the ids and times: the stars are not needed, and these arrays stay held while the
    # ranker is fitted again (the stage's peak; 128 MB of float32 stars at 32M ratings).
    user_idx, movie_idx = vocab.encode_users(ratings["user_id"]), vocab.encode_movies(ratings["movie_id"])
    part = ranking_part(model)
    settings = part.fixed_settings()

    def fit_before_week(mask: Any) -> Recommender:
        return train(
            part.name,
            ratings[mask],
            vocab,
            spec=spec,
            scale=scale,
            movies=movies,
            seed=seed,
            validation_fraction=0.0 if settings is not None else 0.05,
            params=settings,
            work_dir=work_dir,
        ).model

    return choose_trend(
        fit_before_week,
        user_idx,
        movie_idx,
        timestamps,
        vocab.n_users,
        vocab.n_movies,
        cutoff,
        depth=depth,
        k=k,
    )


def explore_candidates(cfg: Any, n_movies: int) -> int:
    """Movies per user the scorer keeps for exploration (``top_n`` when it is off)."""
    return min(cfg.explore.candidates(cfg.top_n), max(cfg.top_n, n_movies))


def scoring_depth(cfg: Any, n_movies: int, choice: TrendChoice) -> int:
    """Movies per user the scorer returns: exploration's candidates, or the trend's when it runs."""
    kept = explore_candidates(cfg, n_movies)
    return trend_depth(cfg.top_n, n_movies, kept) if choice.active else kept


def night_trend_prior(ratings: pd.DataFrame, vocab: IdVocabulary, cutoff: int, days: int, newness: float = 0.0) -> Any:
    """Each movie's trend prior for the night (``serving.trend.trend_prior``), once a night."""
    movie_idx = vocab.encode_movies(ratings["movie_id"])
    timestamps = ratings["timestamp"].to_numpy(np.int64)
    counts = recent_counts(movie_idx, timestamps, vocab.n_movies, cutoff, days)
    totals = total_counts(movie_idx, timestamps, vocab.n_movies, cutoff) if newness > 0 else None
    return trend_prior(counts, totals, newness)


def apply_trend(candidates: Any, choice: TrendChoice, seen: Any, prior: Any) -> Any:
    """``candidates`` (a ranked ``TopN``) re-ranked with the night's trend; unchanged when it is off."""
    if not choice.active or prior is None:
        return candidates
    return boost_top_n(candidates, seen, prior, choice.beta)


def evaluate(
    trained: Trained,
    split: Split,
    vocab: IdVocabulary,
    spec: DatasetSpec,
    *,
    k: int = 10,
    explore: ExplorePolicy | None = None,
    top_n: int | None = None,
) -> dict[str, Any]:
    """The model and the baselines on the same split: ``{"model", "split", "metrics", "baselines"}``.

    ``explore`` (with the published ``top_n``) evaluates the model's lists as they are published;
    the baselines are always their own rankings."""
    train_part, test_part = to_interactions(split.train, vocab), to_interactions(split.test, vocab)
    metrics = evaluate_model(trained.model, train_part, test_part, k=k, explore=explore, top_n=top_n)
    metrics["train_seconds"] = round(trained.seconds, 2)
    baselines = evaluate_baselines(train_part, test_part, k=k, rating_min=spec.rating_min, rating_max=spec.rating_max)
    return {"model": trained.model.label, "split": split.name, "metrics": metrics, "baselines": baselines}


def run_experiment(
    archive: Path,
    spec: DatasetSpec,
    gate: Gate,
    *,
    split: str,
    model: str,
    seed: int = 42,
    k: int = 10,
    reject_threshold: float = 0.01,
    scale: str = "auto",
) -> dict[str, Any]:
    """`recsys evaluate`: the nightly preparation (data gate included), then train and evaluate once."""
    data = prepare(archive, spec, gate, reject_threshold=reject_threshold, scale=scale)
    parts = split_ratings(data.ratings, data.release, split, seed)
    trained = train(model, parts.train, data.vocab, spec=spec, scale=data.scale, movies=data.gated.movies, seed=seed)
    result = evaluate(trained, parts, data.vocab, spec, k=k)
    return {
        **result["metrics"],
        "model": trained.model.label,
        "split": split,
        "dataset": spec.name,
        "scale": data.scale.name,
        "train_ratings": len(parts.train),
        "test_ratings": len(parts.test),
        "rejected_ratings": len(data.gated.rejects),
    }
