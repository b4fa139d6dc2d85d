"""The one run configuration: built from flags, ``RECSYS_*`` variables and defaults, validated once.

Every entry point (the CLI, the nightly flow, a deployment's parameters) turns what it was given
into a :class:`NightlyConfig` before anything downloads or trains. Validation happens here, at the
edge, so a typo costs seconds, not a training run; paths are made absolute here, so nothing
downstream depends on the working directory (Great Expectations, for one, refuses relative
folders).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys_core.data.datasets import DATASETS, LOG_DATASET
from recsys_core.data.download import is_url
from recsys_core.errors import ConfigError
from recsys_core.model_names import DEFAULT_MODEL, MODEL_NAMES
from recsys_core.nights.calendar import future_night_problem, parse_as_of
from recsys_core.prep.splitting import SPLITS
from recsys_core.serving.explore import ExplorePolicy, default_depth

# How each field is spelled on the command line and in the environment, for error messages.
OPTION_NAMES: dict[str, str] = {
    "data_dir": "--data-dir",
    "dataset": "--dataset",
    "source": "--source",
    "model": "--model",
    "top_n": "--top-n",
    "split": "--split",
    "seed": "--seed",
    "k": "--k",
    "reject_threshold": "--reject-threshold",
    "memory_budget_mb": "--memory-budget",
    "offline": "--offline",
    "shards": "--shards",
    "dask_address": "--dask-address",
    "retention": "--retention",
    "quality_gate": "--quality-gate",
    "gate_margin": "gate_margin",
    "refit_full": "refit_full",
    "refit_max_ratings": "refit_max_ratings",
    "refit_mode": "--refit-mode",
    "scale": "--scale",
    "as_of": "--as-of",
    "retrain": "--retrain",
    "explore_slots": "--explore-slots",
    "explore_depth": "--explore-depth",
    "explore_coverage": "--explore-coverage",
    "trend": "--trend/--no-trend",
}

# Fields that change what a night publishes (a backfill skips a night whose table was built with
# the same values and the same input); the rest (where, how parallel, how long kept) do not.
TABLE_FIELDS = (
    "dataset",
    "model",
    "top_n",
    "split",
    "seed",
    "k",
    "reject_threshold",
    "refit_full",
    "refit_max_ratings",
    "refit_mode",
    "scale",
    "quality_gate",
    "gate_margin",
    "explore_slots",
    "explore_depth",
    "explore_coverage",
    "trend",
)


class NightlyConfig(BaseModel):
    """What one nightly run needs to know. Frozen: a run never changes its own configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(Path("data"), description="Where caches, runs and tables live.")
    dataset: str = Field("ml-100k", description="MovieLens release name.")
    source: str | None = Field(None, description="Mirror URL or local archive; default: GroupLens.")
    model: str = Field(DEFAULT_MODEL, description="Model registry name (`recsys models`).")
    top_n: int = Field(10, ge=1, description="Recommendations per user (at most the catalogue).")
    split: str = Field("stratified", description="Evaluation split.")
    seed: int = Field(42, ge=0, description="Seed for splits and training.")
    k: int = Field(10, ge=1, le=1000, description="Cut-off of the ranking metrics.")
    reject_threshold: float = Field(0.01, ge=0, le=1, description="Largest share of rejected rows.")
    memory_budget_mb: int = Field(2048, ge=16, description="Scoring memory budget per shard.")
    offline: bool = Field(False, description="Use the cached archive only.")
    shards: int = Field(1, ge=1, le=4096, description="User shards scored in parallel.")
    dask_address: str | None = Field(None, description="Existing Dask scheduler, e.g. tcp://host:8786.")
    retention: int = Field(14, ge=1, description="Published runs to keep.")
    quality_gate: bool = Field(True, description="Refuse to publish a model worse than baselines or champion.")
    gate_margin: float = Field(0.05, ge=0, le=1, description="Allowed relative drop against the champion.")
    refit_full: bool = Field(True, description="Retrain on all ratings before scoring.")
    refit_max_ratings: int | None = Field(
        None,
        ge=1,
        description="Skip the refit on all ratings above this many ratings (default: no limit, it always runs).",
    )
    refit_mode: Literal["fixed", "warm", "search"] = Field(
        "warm",
        description="How the refit trains: warm (from the candidate's weights, its choices fixed), "
        "fixed (its choices, from scratch) or search (choices searched again on a holdout).",
    )
    scale: Literal["auto", "small", "large"] = Field(
        "auto", description="Scale profile: auto (from the data's shape), small or large (recsys_core/scale.py)."
    )
    retrain: bool = Field(False, description="Train even when tonight's input equals a published night's.")
    explore_slots: int | None = Field(
        None,
        ge=0,
        description="At most this many positions at the end of each list may go to movies no list shows yet "
        "(default: all but the first, top_n - 1; 0 turns exploration off; recsys_core/serving/explore.py).",
    )
    explore_depth: int | None = Field(
        None,
        ge=1,
        description="How deep in each user's ranking explored movies may come from (default 20 x top_n, at most "
        "max(200, 2 x top_n): scoring keeps this many candidates per user).",
    )
    explore_coverage: float = Field(
        0.15,
        gt=0,
        le=1,
        description="Explore only until the lists cover this share of the catalogue (1: fill every explore slot).",
    )
    trend: bool = Field(
        True,
        description="Lean each night's lists towards the movies rated most in the days before it, by a weight "
        "chosen on the week before the night (0 when that does not help; recsys_core/serving/trend.py).",
    )
    as_of: date | None = Field(
        None,
        description="The night (UTC date): only ratings before its 00:00 UTC are used. "
        "Default: the flow run's scheduled date (today for a manual run).",
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _a_date(cls, value: Any) -> Any:
        try:
            night = parse_as_of(value)
        except ConfigError:
            raise ValueError("is not a date; give the night as YYYY-MM-DD (UTC)") from None
        problem = future_night_problem(night) if night is not None else None
        if problem:
            raise ValueError(problem)
        return night

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in DATASETS and value != LOG_DATASET:
            raise ValueError(
                f"unknown dataset {value!r}; known releases: {', '.join(sorted(DATASETS))}, "
                f"or {LOG_DATASET} for a ratings log folder (--source DIR)"
            )
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODEL_NAMES:
            raise ValueError(f"unknown model {value!r}; known models: {', '.join(sorted(MODEL_NAMES))}")
        return value

    @field_validator("split")
    @classmethod
    def _known_split(cls, value: str) -> str:
        if value not in SPLITS:
            raise ValueError(f"unknown split {value!r}; choose one of: {', '.join(SPLITS)}")
        return value

    @field_validator("source", "dask_address", mode="before")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; pass a URL or a path, or leave the option (and its RECSYS_ variable) unset")
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_not_blank(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str | Path) and not str(value).strip()):
            raise ValueError("is empty; pass a folder (default ./data) or unset RECSYS_DATA_DIR")
        return value

    @model_validator(mode="after")
    def _fits_the_release(self) -> NightlyConfig:
        if self.dataset == LOG_DATASET:
            return self._fits_a_log()
        spec = DATASETS[self.dataset]
        if self.split in spec_folds_all() and self.split not in spec.folds:
            raise ValueError(
                f"split {self.split!r} is a predefined fold that {self.dataset} does not ship "
                f"(--split); use random, stratified or temporal"
                + (f", or one of {', '.join(spec.folds)}" if spec.folds else "")
            )
        if spec.n_movies is not None and self.top_n > spec.n_movies:
            raise ValueError(f"--top-n {self.top_n} is above the {spec.n_movies:,} movies of {self.dataset}")
        return self._explore_fits()

    def _explore_fits(self) -> NightlyConfig:
        try:
            self.explore.check(self.top_n)
        except ConfigError as exc:
            raise ValueError(str(exc).rstrip(".")) from None
        return self

    @property
    def explore(self) -> ExplorePolicy:
        """The published lists' exploration, defaults resolved against ``top_n``, seeded with ``--seed``."""
        slots = self.top_n - 1 if self.explore_slots is None else self.explore_slots
        depth = default_depth(self.top_n) if self.explore_depth is None else self.explore_depth
        return ExplorePolicy(slots, depth, self.seed, None if self.explore_coverage >= 1 else self.explore_coverage)

    def _fits_a_log(self) -> NightlyConfig:
        """``--dataset log`` reads a folder named by ``--source``; a log ships no predefined folds."""
        if self.source is None or is_url(self.source):
            given = "" if self.source is None else f" (got {self.source!r})"
            raise ValueError(
                f"--dataset log reads a ratings log folder: pass it with --source DIR{given}, a folder holding "
                "ratings/, movies.parquet or movies.csv, and dataset.json"
            )
        if self.split in spec_folds_all():
            raise ValueError(
                f"split {self.split!r} is a predefined fold of a MovieLens release, and a ratings log has none "
                "(--split); use random, stratified or temporal"
            )
        return self._explore_fits()

    def resolved(self, base: Path | None = None) -> NightlyConfig:
        """A copy with ``data_dir`` and a local ``source`` made absolute against ``base`` (the cwd)."""
        base = Path(base or Path.cwd())
        updates: dict[str, Any] = {"data_dir": absolute(self.data_dir, base)}
        if self.source is not None and not is_url(self.source):
            updates["source"] = str(absolute(Path(self.source), base))
        return self.model_copy(update=updates)

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view for logs, manifests and the UI."""
        return self.model_dump(mode="json")

    def table_fingerprint(self) -> str:
        """sha256 of the settings that shape the published table (``TABLE_FIELDS``) and the code's version."""
        from recsys_core import __version__
        from recsys_core.serving.trend import trend_method

        summary = self.summary()
        # exploration by its resolved policy: equal lists (e.g. slots unset or top_n - 1) hash alike
        fields = {name: summary[name] for name in TABLE_FIELDS if not name.startswith("explore_")}
        fields |= {"explore": self.explore.shape(), "version": __version__}
        if self.trend:  # the trend by what it chooses from: other grids make other lists
            fields["trend"] = trend_method()
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def spec_folds_all() -> set[str]:
    """Every predefined fold name any release ships."""
    return {fold for spec in DATASETS.values() for fold in spec.folds}


class Settings(BaseSettings):
    """Raw ``RECSYS_<FIELD>`` values from the environment; validated by :class:`NightlyConfig`."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    data_dir: str | None = None
    dataset: str | None = None
    source: str | None = None
    model: str | None = None
    top_n: str | None = None
    split: str | None = None
    seed: str | None = None
    k: str | None = None
    reject_threshold: str | None = None
    memory_budget_mb: str | None = None
    offline: str | None = None
    shards: str | None = None
    dask_address: str | None = None
    retention: str | None = None
    scale: str | None = None
    refit_mode: str | None = None
    explore_slots: str | None = None
    explore_depth: str | None = None
    explore_coverage: str | None = None
    trend: str | None = None


def absolute(path: Path, base: Path) -> Path:
    """``~`` expanded, made absolute against ``base``, normalised (symlinks kept)."""
    path = Path(path).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def load_config(*, check_paths: bool = True, base: Path | None = None, **flags: Any) -> NightlyConfig:
    """Defaults, then ``RECSYS_*`` variables, then non-None ``flags``; validated, paths absolute.

    Raises :class:`ConfigError` (one paragraph naming the option) on any bad value.
    """
    env = {k: v for k, v in Settings().model_dump().items() if v is not None}
    given = {k: v for k, v in flags.items() if v is not None}
    return build_config({**env, **given}, check_paths=check_paths, base=base)


def build_config(values: dict[str, Any], *, check_paths: bool = True, base: Path | None = None) -> NightlyConfig:
    """Validate ``values`` (flow parameters or merged settings) into an absolute-path config."""
    try:
        config = NightlyConfig(**values).resolved(base)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    if check_paths:
        check_data_dir(config.data_dir)
        check_source(config)
    return config


def describe_validation_error(exc: ValidationError) -> str:
    """Pydantic's errors as one sentence per option, named as the user typed it."""
    parts = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        option = OPTION_NAMES.get(field, field)
        env = f" / RECSYS_{field.upper()}" if field in Settings.model_fields else ""
        message = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        shown = "" if isinstance(given, dict) or given is None else f" (got {given!r})"
        label = f"{option}{env}" if option else "configuration"
        parts.append(f"{label}: {message}{shown}")
    return "Invalid configuration. " + "; ".join(parts) + ". Fix the option and run again (`recsys run --help`)."


def check_data_dir(data_dir: Path) -> None:
    """The data dir is a folder we can write to, or can be created; nothing is left behind."""
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(
            f"--data-dir {data_dir} is a file, not a folder. Pass a folder for caches, runs and tables "
            "(default ./data), or move the file away."
        )
    probe_at = data_dir
    while not probe_at.exists():
        probe_at = probe_at.parent
    if not probe_at.is_dir():
        raise ConfigError(f"--data-dir {data_dir} cannot be created: {probe_at} is a file. Pass another folder.")
    try:
        with tempfile.TemporaryFile(dir=probe_at, prefix=".recsys-write-probe-"):
            pass
    except OSError as exc:
        what = "is not writable" if probe_at == data_dir else f"cannot be created ({probe_at} is not writable)"
        raise ConfigError(
            f"--data-dir {data_dir} {what}: {exc.strerror or exc}. Pass a folder you can write to "
            "(--data-dir or RECSYS_DATA_DIR), or fix its permissions."
        ) from None


def check_source(config: NightlyConfig) -> None:
    """A local ``--source`` must exist now, not after the run folder was made."""
    if config.dataset == LOG_DATASET:
        check_log_source(Path(str(config.source)))
        return
    if config.source is None or is_url(config.source):
        return
    path = Path(config.source)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"--source {path} {state}. Pass the path of a MovieLens release archive (.zip) or an "
            "http(s) mirror URL, or unset RECSYS_SOURCE to download from GroupLens."
        )


def check_log_source(path: Path) -> None:
    """``--dataset log``: ``--source`` is a ratings log folder with a valid ``dataset.json``."""
    from recsys_core.data.ratings_log import load_log_spec
    from recsys_core.errors import DataContractError

    try:
        load_log_spec(path)
    except DataContractError as exc:
        raise ConfigError(f"--source {path} (--dataset log): {exc}") from None
