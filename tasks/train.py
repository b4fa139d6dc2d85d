"""Stage 7: the scale profile, then the chosen model (seeded, early stopping on a validation slice)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys_core import pipeline
from recsys_core.config import NightlyConfig
from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.sources import as_spec
from recsys_core.model_names import DEFAULT_MODEL
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.runs.failures import converts_storage_errors
from recsys_core.scale import ScaleProfile
from tasks.artifacts import logger, publish_markdown
from tasks.stage import stage

__all__ = ["DEFAULT_MODEL", "choose_scale_profile", "refit_model", "train_model"]


@stage("choose-scale")
def choose_scale_profile(ratings: pd.DataFrame, vocab: IdVocabulary, cfg: NightlyConfig) -> ScaleProfile:
    """Every size-dependent choice of this run, made once and shown (models never look at sizes)."""
    profile = pipeline.decide_scale(
        ratings, vocab, forced=cfg.scale, refit_full=cfg.refit_full, refit_max_ratings=cfg.refit_max_ratings
    )
    logger().info("scale profile %s (%s): %s", profile.name, profile.reason, profile.summary())
    if cfg.refit_full and not profile.refit:
        logger().warning(
            "refit on all ratings: skipped, %s ratings > refit_max_ratings=%s; publishing the candidate "
            "trained on the split's train part",
            f"{len(ratings):,}",
            f"{cfg.refit_max_ratings:,}",
        )
    rows = "\n".join(f"| {k} | `{v}` |" for k, v in profile.summary().items())
    publish_markdown(
        "scale-profile",
        f"## Scale profile: {profile.name}\n\n{profile.reason}\n\n| setting | value |\n| --- | --- |\n{rows}",
        "Size-dependent settings of this run",
    )
    return profile


@stage("train")
@converts_storage_errors
def train_model(
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    model_name: str,
    dataset: str | DatasetSpec,
    seed: int,
    scale: ScaleProfile,
    save_to: Path | None = None,
    work_dir: Path | None = None,
) -> pipeline.Trained:
    """Fit on ``ratings``; with ``save_to`` the model is saved there for serving and audits.

    ``work_dir`` (the run folder) receives the Parquet training pairs that streamed pair models
    read through tf.data; they are deleted after the fit."""
    trained = pipeline.train(
        model_name, ratings, vocab, spec=as_spec(dataset), scale=scale, movies=movies, seed=seed, work_dir=work_dir
    )
    _save_and_log(trained, vocab, save_to, len(ratings))
    return trained


@stage("refit-all")
@converts_storage_errors
def refit_model(
    candidate: pipeline.Trained,
    ratings: pd.DataFrame,
    vocab: IdVocabulary,
    movies: pd.DataFrame,
    dataset: str | DatasetSpec,
    seed: int,
    scale: ScaleProfile,
    mode: pipeline.RefitMode,
    save_to: Path,
    work_dir: Path | None = None,
) -> pipeline.Trained:
    """The published model: the candidate's choices (epochs, lambda, blend weights) on every
    rating, warm-started from its weights with ``mode="warm"``; ``search`` searches again."""
    trained = pipeline.refit(
        candidate.model,
        ratings,
        vocab,
        spec=as_spec(dataset),
        scale=scale,
        mode=mode,
        movies=movies,
        seed=seed,
        work_dir=work_dir,
    )
    logger().info("refit mode %s (asked: %s)", trained.refit_mode, mode)
    _save_and_log(trained, vocab, save_to, len(ratings))
    return trained


def _save_and_log(trained: pipeline.Trained, vocab: IdVocabulary, save_to: Path | None, n_ratings: int) -> None:
    if save_to is not None:
        trained.model.save(save_to)
        vocab.save(save_to / "vocabulary.json")
    epochs = {k: len(v) for k, v in trained.model.history.items()}
    logger().info(
        "trained %s in %.1f s on %s ratings (history %s)",
        trained.model.label,
        trained.seconds,
        f"{n_ratings:,}",
        epochs,
    )
