"""Model registry: every recommender by name, plus loading a saved one."""

from __future__ import annotations

from pathlib import Path

from recsys_core.errors import ModelError
from recsys_core.model_names import BASELINES, DEFAULT_MODEL
from recsys_core.models.autorec import ItemAutoRec
from recsys_core.models.base import Recommender, read_model_meta
from recsys_core.models.baselines import BiasBaseline, GlobalMean, Popularity
from recsys_core.models.biased_mf import BiasedMF
from recsys_core.models.blend import Blend
from recsys_core.models.classifier import RatingClassifier
from recsys_core.models.combined import Combined
from recsys_core.models.dot_bias import DotBias
from recsys_core.models.ease import EASE
from recsys_core.models.ease_tail import EASETail
from recsys_core.models.hybrid_mf import HybridMF
from recsys_core.models.item_knn import ItemKNN
from recsys_core.models.mf import GradientTapeMF
from recsys_core.models.mult_dae import MultDAE
from recsys_core.models.ncf import NCF
from recsys_core.models.rank_blend import RankBlend
from recsys_core.models.recvae import RecVAE

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Combined,
        BiasedMF,
        RatingClassifier,
        NCF,
        DotBias,
        GradientTapeMF,
        HybridMF,
        ItemAutoRec,
        ItemKNN,
        Blend,
        MultDAE,
        EASE,
        EASETail,
        RankBlend,
        RecVAE,
        GlobalMean,
        BiasBaseline,
        Popularity,
    )
}


def create_model(name: str, **kwargs) -> Recommender:
    """Instantiate a model by registry name."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ModelError(
            f"Unknown model {name!r} (--model / RECSYS_MODEL). Known models: {', '.join(sorted(MODELS))}."
        ) from None
    return cls(**kwargs)


def load_model(directory: Path) -> Recommender:
    """Load a model saved with ``Recommender.save`` (the class is read from model.json)."""
    meta = read_model_meta(directory)
    if meta.get("name") not in MODELS:
        raise ModelError(f"{directory} holds an unknown model {meta.get('name')!r}.")
    return MODELS[meta["name"]].load(directory)


__all__ = ["BASELINES", "DEFAULT_MODEL", "MODELS", "Recommender", "create_model", "load_model"]
