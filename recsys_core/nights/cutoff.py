"""What a night may see: ratings strictly before its cutoff, and what is new since the last night."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from recsys_core.data.readers import Release
from recsys_core.errors import DataContractError
from recsys_core.nights.calendar import cutoff_seconds, date_of_seconds

# Below this a night has too little to split, train and evaluate on.
MIN_NIGHT_USERS = 10
MIN_NIGHT_RATINGS = 100


@dataclass(frozen=True)
class NightData:
    """A release cut at a night: what the run sees, and the whole release's span for messages."""

    release: Release
    as_of: date
    cutoff: int
    first_rating: date | None
    last_rating: date | None
    dropped_after_cutoff: int
    n_ratings: int = -1  # ratings before the cutoff (kept when the frame is let go)

    @property
    def nothing_new(self) -> bool:
        """True when the night is after the release's last rating day: the table cannot change."""
        return self.last_rating is not None and self.last_rating < self.as_of - pd.Timedelta(days=1)

    def summary(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "cutoff": pd.Timestamp(self.cutoff, unit="s", tz="UTC").isoformat(),
            "release_first_rating": self.first_rating.isoformat() if self.first_rating else None,
            "release_last_rating": self.last_rating.isoformat() if self.last_rating else None,
            "ratings_after_cutoff": self.dropped_after_cutoff,
            "ratings": self.n_ratings if self.n_ratings >= 0 else len(self.release.ratings),
        }

    def without_ratings(self) -> NightData:
        """The night's facts without its rating frame: the flow keeps this once the cleaned
        ratings and the split exist (the frame is one copy of every rating)."""
        light = dataclasses.replace(self.release, ratings=self.release.ratings.iloc[:0])
        return dataclasses.replace(self, release=light, n_ratings=len(self.release.ratings))


def rating_span(ratings: pd.DataFrame) -> tuple[date | None, date | None]:
    """UTC dates of the first and last rating (None for an empty frame)."""
    if ratings.empty:
        return None, None
    ts = ratings["timestamp"]
    return date_of_seconds(ts.min()), date_of_seconds(ts.max())


def before_cutoff(ratings: pd.DataFrame, cutoff: int) -> pd.DataFrame:
    """Rows with ``timestamp < cutoff``: the one filter every stage of a night relies on."""
    return ratings[ratings["timestamp"].to_numpy() < cutoff].reset_index(drop=True)


def cut_release(release: Release, as_of: date, span: tuple[date | None, date | None] | None = None) -> NightData:
    """The release as of the night: ratings before the cutoff; movies are catalogue and all kept.

    ``span`` is the whole source's first and last rating day when ``release`` was already read
    only through the cutoff (a log); by default it is read off ``release``. Predefined folds are
    restricted to the cleaned ratings when a split is made, so they follow the cut untouched.
    """
    cutoff = cutoff_seconds(as_of)
    first, last = span if span is not None else rating_span(release.ratings)
    kept = before_cutoff(release.ratings, cutoff)
    night = dataclasses.replace(release, ratings=kept)
    return NightData(night, as_of, cutoff, first, last, len(release.ratings) - len(kept), len(kept))


def require_enough_data(night: NightData, dataset: str) -> None:
    """One paragraph when the night is before the release has enough ratings to train on."""
    ratings = night.release.ratings
    users = ratings["user_id"].nunique() if len(ratings) else 0
    if users >= MIN_NIGHT_USERS and len(ratings) >= MIN_NIGHT_RATINGS:
        return
    span = (
        f"its ratings run from {night.first_rating.isoformat()} to {night.last_rating.isoformat()}"
        if night.first_rating and night.last_rating
        else "it holds no ratings"
    )
    raise DataContractError(
        f"--as-of {night.as_of.isoformat()} is too early for {dataset}: before that night's cutoff "
        f"({night.as_of.isoformat()} 00:00 UTC) the release has {len(ratings):,} ratings from {users:,} users, "
        f"and a model needs at least {MIN_NIGHT_RATINGS} ratings from {MIN_NIGHT_USERS} users; {span}. "
        "Choose a later --as-of (or --from for a backfill)."
    )


def count_new_since(ratings: pd.DataFrame, since: int | None) -> dict[str, int] | None:
    """Ratings, users and movies that are new since an earlier cutoff (None without one).

    A user or movie is new when its first rating tonight is at or after ``since``.
    """
    if since is None:
        return None
    ts = ratings["timestamp"].to_numpy()
    new = ts >= since
    first_user = ratings.groupby("user_id")["timestamp"].min()
    first_movie = ratings.groupby("movie_id")["timestamp"].min()
    return {
        "ratings": int(new.sum()),
        "users": int((first_user >= since).sum()),
        "movies": int((first_movie >= since).sum()),
        "active_users": int(ratings.loc[new, "user_id"].nunique()),
    }
