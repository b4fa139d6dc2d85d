"""The raw-data gate: contract breaks stop the run, row faults go to a rejects table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from data_checks.runner import SuiteReport, SuiteSession
from recsys_core.errors import ConfigError, DataContractError

EARLIEST_TIMESTAMP = 788_918_400  # 1995-01-01 UTC: MovieLens collection began after this


@dataclass
class GateResult:
    """Clean rows that passed, quarantined rows with reasons, and every suite's report."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    rejects: pd.DataFrame
    reports: list[SuiteReport] = field(default_factory=list)

    @property
    def reject_fraction(self) -> float:
        total = len(self.ratings) + len(self.rejects)
        return len(self.rejects) / total if total else 0.0


def check_raw_data(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    *,
    rating_values: tuple[float, ...],
    reject_threshold: float = 0.01,
    now: float | None = None,
    dataset: str = "input",
    malformed: pd.DataFrame | None = None,
    docs_dir: Path | None = None,
) -> GateResult:
    """Validate raw ratings and movies; quarantine bad rows; raise on contract breaks.

    ``reject_threshold`` is the largest share of rating rows that may be rejected before the
    run is stopped: a few bad rows are noise, many mean the release or reader is broken.
    ``malformed`` holds lines the reader could not split into fields (member, line, reason,
    text); they join the rejects table and count towards the threshold. With ``docs_dir``
    GX writes its Data Docs site for both suites there.
    """
    _require_integer_columns(ratings, ("user_id", "movie_id", "timestamp"), dataset)
    with SuiteSession(docs_dir) as session:  # closing it lets GX drop the frames it validated
        movie_report = session.run(movies, "raw_movies")
        _raise_on_contract(movie_report, f"{dataset} movies")
        checked = ratings.copy()
        checked["movie_known"] = checked["movie_id"].isin(movies["movie_id"])
        params = {
            "rating_values": list(rating_values),
            "timestamp_min": EARLIEST_TIMESTAMP,
            "timestamp_max": int((now or time.time()) + 86_400),
        }
        rating_report = session.run(checked, "raw_ratings", params)
    _raise_on_contract(rating_report, f"{dataset} ratings")
    if len(checked) and not checked["movie_known"].any():
        raise DataContractError(
            f"None of the {len(checked):,} ratings in {dataset} refers to a movie in its movies "
            "table: the two files do not belong together. Check --dataset and --source."
        )
    bad = rating_report.bad_rows()
    reasons = pd.Series({idx: "; ".join(sorted(set(r))) for idx, r in bad.items()}, dtype="str")
    is_bad = checked.index.isin(reasons.index)
    rejects = ratings[is_bad].copy()
    rejects["reason"] = reasons.reindex(rejects.index).to_numpy()
    if malformed is not None and len(malformed):
        rejects = pd.concat([rejects.assign(member="ratings"), malformed], ignore_index=True)
    clean = ratings[~is_bad].copy()
    for col in ("user_id", "movie_id", "timestamp"):
        clean[col] = clean[col].astype("int64")
    result = GateResult(clean.reset_index(drop=True), movies, rejects, [movie_report, rating_report])
    if result.reject_fraction > reject_threshold:
        top = rejects["reason"].value_counts().head(3)
        summary = ", ".join(f"{n:,} x {r}" for r, n in top.items())
        raise DataContractError(
            f"{len(rejects):,} of {len(ratings):,} ratings in {dataset} "
            f"({result.reject_fraction:.1%}) failed row checks, over the {reject_threshold:.1%} "
            f"threshold ({summary}). The release looks damaged: fetch it again, or raise "
            "--reject-threshold if these rows are expected."
        )
    return result


def _require_integer_columns(df: pd.DataFrame, columns: tuple[str, ...], dataset: str) -> None:
    """Ids and timestamps must be integer-typed (nullable allowed: nulls become rejects)."""
    for col in columns:
        if col in df.columns and not pd.api.types.is_integer_dtype(df[col]):
            raise DataContractError(
                f"The {dataset} ratings column {col!r} has type {df[col].dtype}, not integer: the "
                "file does not follow the release layout. Check --dataset and the archive."
            )


def _raise_on_contract(report: SuiteReport, what: str) -> None:
    broken = report.failures("contract")
    if broken:
        details = "; ".join(o.describe() for o in broken)
        raise DataContractError(
            f"The {what} break the data contract ({report.suite}): {details}. The run stopped "
            "before training; check that --dataset matches the archive and that the files are intact."
        )


def check_top_n_fits(top_n: int, movies: pd.DataFrame, dataset: str) -> None:
    """A list longer than the catalogue cannot be filled: say so before training, not at publish."""
    n_movies = int(movies["movie_id"].nunique())
    if top_n > n_movies:
        raise ConfigError(
            f"--top-n {top_n} is above the {n_movies:,} movies in this {dataset} release's catalogue. "
            f"Pass --top-n {n_movies} or less."
        )
