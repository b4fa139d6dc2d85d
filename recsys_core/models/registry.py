"""The model registry: every recommender by name, created or loaded without import cycles.

Classes are imported on first use (``module:Class`` paths), so ensembles can import
``create_model``/``load_model`` at module top and importing the registry loads no model code
(and no TensorFlow). ``recsys_core.model_names`` lists the same names for validation; a test
keeps the two equal.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from recsys_core.errors import ModelError
from recsys_core.models.base import Recommender, read_model_meta

# Registry name -> "module:Class" under recsys_core.models, in the order `recsys models` lists them.
MODEL_PATHS: dict[str, str] = {
    "combined": "combined:Combined",
    "biased_mf": "biased_mf:BiasedMF",
    "classifier": "classifier:RatingClassifier",
    "ncf": "ncf:NCF",
    "dot_bias": "dot_bias:DotBias",
    "mf": "mf:GradientTapeMF",
    "hybrid_mf": "hybrid_mf:HybridMF",
    "autorec": "autorec:ItemAutoRec",
    "item_knn": "item_knn:ItemKNN",
    "bayes_fm": "bayes_fm:BayesFM",
    "blend": "blend:Blend",
    "mult_dae": "mult_dae:MultDAE",
    "mult_dae_bag": "seed_bag:SeedBag",
    "wide_dae": "wide_dae:WideDAE",
    "ease": "ease:EASE",
    "rank_blend": "rank_blend:RankBlend",
    "ease_tail": "ease_tail:EASETail",
    "recency_ease": "recency_ease:RecencyEASE",
    "session_ease": "session_ease:SessionEASE",
    "recvae": "recvae:RecVAE",
    "sasrec": "sasrec:SASRec",
    "global_mean": "baselines:GlobalMean",
    "bias": "baselines:BiasBaseline",
    "popularity": "baselines:Popularity",
}


def model_class(name: str) -> type[Recommender]:
    """The class registered as ``name``, with an error listing the known names."""
    try:
        module, cls = MODEL_PATHS[name].split(":")
    except KeyError:
        raise ModelError(
            f"Unknown model {name!r} (--model / RECSYS_MODEL). Known models: {', '.join(sorted(MODEL_PATHS))}."
        ) from None
    return getattr(importlib.import_module(f"recsys_core.models.{module}"), cls)


def all_models() -> dict[str, type[Recommender]]:
    """Every registered class by name (imports all model modules)."""
    return {name: model_class(name) for name in MODEL_PATHS}


def create_model(name: str, **kwargs) -> Recommender:
    """Instantiate a model by registry name."""
    return model_class(name)(**kwargs)


def load_model(directory: Path) -> Recommender:
    """Load a model saved with ``Recommender.save`` (the class is read from model.json)."""
    meta = read_model_meta(directory)
    if meta.get("name") not in MODEL_PATHS:
        raise ModelError(f"{directory} holds an unknown model {meta.get('name')!r}.")
    return model_class(meta["name"]).load(directory)
