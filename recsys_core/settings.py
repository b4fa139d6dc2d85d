"""Run settings: flags override RECSYS_* environment variables, which override defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys_core.models import DEFAULT_MODEL


class Settings(BaseSettings):
    """What a run needs to know; every field can come from ``RECSYS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where caches, runs and tables live.")
    dataset: str = Field("ml-100k", description="MovieLens release name.")
    source: str | None = Field(None, description="Mirror URL or local archive; default: GroupLens.")
    model: str = Field(DEFAULT_MODEL, description="Model registry name (`recsys models`).")
    top_n: int = Field(10, ge=1, le=1000, description="Recommendations per user.")
    split: str = Field("stratified", description="Evaluation split.")
    seed: int = Field(42, description="Seed for splits and training.")
    k: int = Field(10, ge=1, description="Cut-off of the ranking metrics.")
    reject_threshold: float = Field(0.01, ge=0, le=1, description="Largest share of rejected rows.")
    memory_budget_mb: int = Field(2048, ge=16, description="Scoring memory budget.")
    offline: bool = Field(False, description="Use the cached archive only.")
    shards: int = Field(1, ge=1, description="User shards scored in parallel.")
    dask_address: str | None = Field(None, description="Existing Dask scheduler, e.g. tcp://host:8786.")
    retention: int = Field(14, ge=1, description="Published runs to keep.")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with non-None ``overrides`` (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
