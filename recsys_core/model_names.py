"""Model names the CLI and the configuration accept, without importing any model code.

Validating ``--model`` must not load TensorFlow (seconds); ``tests/core/test_models.py`` checks
that this list equals the registry in ``recsys_core.models``.
"""

from __future__ import annotations

DEFAULT_MODEL = "combined"
BASELINES = ("global_mean", "bias", "popularity")
MODEL_NAMES = (
    "combined",
    "biased_mf",
    "classifier",
    "ncf",
    "dot_bias",
    "mf",
    "hybrid_mf",
    "autorec",
    "item_knn",
    "bayes_fm",
    "blend",
    "mult_dae",
    "mult_dae_bag",
    "wide_dae",
    "ease",
    "ease_tail",
    "rank_blend",
    "recency_ease",
    "session_ease",
    "recvae",
    "sasrec",
    *BASELINES,
)
