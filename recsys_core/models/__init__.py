"""Recommenders. The registry (``registry.py``) creates and loads them by name."""

from __future__ import annotations

from typing import Any

from recsys_core.model_names import BASELINES, DEFAULT_MODEL
from recsys_core.models.base import Recommender
from recsys_core.models.registry import all_models, create_model, load_model, model_class


def __getattr__(name: str) -> Any:
    """``MODELS`` (name -> class) on first use: it imports every model module."""
    if name == "MODELS":
        return all_models()
    raise AttributeError(name)


__all__ = ["BASELINES", "DEFAULT_MODEL", "MODELS", "Recommender", "create_model", "load_model", "model_class"]
