"""The scale profile: every choice that depends on the data's size, made once per run, in the open.

Models never look at the size of their input. A run decides its profile from the shape of the
cleaned ratings (or takes the one the configuration forces), logs it, records it in the manifest
and in model.json, and hands models the settings that follow from it as plain parameters.

``small`` (ml-100k .. ml-1m, anything below both limits): in-memory training arrays, the
small-data rating blend, ``session_ease`` ranks (EASE plus a validation-weighted term for movies
rated in the same sitting; it needs one dense Gram matrix of the catalogue), validated on every
validation user with dense factors.
``large`` (above 5M ratings or 250M user x movie cells, e.g. ml-10m .. ml-32m): pair models
stream their training pairs from Parquet, the combined model ranks with plain EASE (the local
sitting term has no blocked Gram yet) and rates with one biased MF whose
batch grows with the data and whose training step XLA compiles (``jit_compile``: 76 -> 38 ms
per 65,536-pair step at ml-25m size, the dense Adam updates of the embedding tables fused; at
ml-100k size the gain is ~10% and not worth the compile), EASE validates on a seeded sample of
users, computes its Gram matrix in dense blocks and is scored on its head movies only (top-N's
covered path); the refit on all ratings runs at every size unless ``refit_max_ratings``
is set.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

ScaleName = Literal["small", "large"]
LARGE_RATINGS = 5_000_000
LARGE_CELLS = 250_000_000  # ~1 GB of float32: the dense users x movies matrix autoencoders use
EASE_VALIDATION_CELLS = 100_000_000  # scores matrix of the sampled validation users
PAIR_MODELS = ("biased_mf", "dot_bias", "hybrid_mf", "ncf", "classifier")


class ScaleProfile(BaseModel):
    """The size-dependent settings of one run, with the shape that decided them."""

    model_config = ConfigDict(frozen=True)

    name: ScaleName
    reason: str
    n_ratings: int
    n_users: int
    n_movies: int
    stream_training: bool
    refit: bool
    rater: str
    rater_params: dict[str, Any]
    ranker: str  # combined's ranking model: session_ease (small) or ease (large)
    ease_validation_users: int | None
    ease_dense_factors: bool
    ease_blocked_gram: bool
    xla_pair_models: bool = False

    def summary(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def decide_scale_name(n_ratings: int, n_users: int, n_movies: int) -> tuple[ScaleName, str]:
    """``large`` above 5M ratings or 250M user x movie cells; the reason says which."""
    cells = n_users * n_movies
    if n_ratings > LARGE_RATINGS:
        return "large", f"{n_ratings:,} ratings > {LARGE_RATINGS:,}"
    if cells > LARGE_CELLS:
        return "large", f"{n_users:,} x {n_movies:,} = {cells:,} cells > {LARGE_CELLS:,}"
    return "small", f"{n_ratings:,} ratings and {cells:,} cells, below {LARGE_RATINGS:,} and {LARGE_CELLS:,}"


def large_rater_params(n_ratings: int) -> dict[str, Any]:
    """Biased-MF settings for a large release: batch ~ n/400 (512..65,536), Adam step sqrt-scaled."""
    batch = int(np.clip(2 ** round(np.log2(max(1, n_ratings) / 400)), 512, 65_536))
    return {
        "dim": 32,
        "per_example_l2": True,
        "l2": 0.03,
        "l2_bias": 0.005,
        "batch_size": batch,
        "learning_rate": float(min(1e-2, 2e-3 * np.sqrt(batch / 512))),
        "epochs": 10,
        "patience": 1,
    }


def choose_scale(
    n_ratings: int,
    n_users: int,
    n_movies: int,
    *,
    forced: str = "auto",
    refit_full: bool = True,
    refit_max_ratings: int | None = None,
) -> ScaleProfile:
    """The run's profile: from the shape (``forced="auto"``) or as the configuration says."""
    if forced == "auto":
        name, reason = decide_scale_name(n_ratings, n_users, n_movies)
    else:
        name, reason = forced, "set by the configuration (--scale)"  # type: ignore[assignment]
    large = name == "large"
    refit = refit_full and (refit_max_ratings is None or n_ratings <= refit_max_ratings)
    return ScaleProfile(
        name=name,
        reason=reason,
        n_ratings=n_ratings,
        n_users=n_users,
        n_movies=n_movies,
        stream_training=large,
        refit=refit,
        rater="biased_mf" if large else "blend",
        ranker="ease" if large else "session_ease",
        rater_params=large_rater_params(n_ratings) if large else {},
        ease_validation_users=max(1_000, EASE_VALIDATION_CELLS // max(1, n_movies)) if large else None,
        ease_dense_factors=not large,
        ease_blocked_gram=large,
        xla_pair_models=large,
    )


def model_params(profile: ScaleProfile, model: str) -> dict[str, Any]:
    """The parameters a model receives from the profile (recorded in its model.json)."""
    ease = {
        "validation_users": profile.ease_validation_users,
        "dense_factors": profile.ease_dense_factors,
        "blocked_gram": profile.ease_blocked_gram,
    }
    stream = {"stream": profile.stream_training, **({"jit_compile": True} if profile.xla_pair_models else {})}
    params: dict[str, Any] = {"scale": profile.name}
    if model in ("ease", "ease_tail", "recency_ease", "session_ease"):
        params.update(ease)
    elif model in PAIR_MODELS:
        params.update(stream)
    elif model == "combined":
        rater_params = {**profile.rater_params, **(stream if profile.rater in PAIR_MODELS else {})}
        params.update(ranker=profile.ranker, ranker_params=ease, rater=profile.rater)
        if rater_params:
            params["rater_params"] = rater_params
    elif model in ("blend", "rank_blend"):
        params["member_params"] = {"ease": ease, "ease_tail": ease, **{name: stream for name in PAIR_MODELS}}
    return params
