"""Request and response bodies (they also make the OpenAPI page at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**62  # ids beyond int64 would overflow the index lookups
MAX_RATINGS = 1_000


class MovieRef(BaseModel):
    movie_id: int
    title: str


class Item(BaseModel):
    """One entry of every list the API returns."""

    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    score: float = Field(description="Ranking score (comparable within one run and one list only).")
    predicted_rating: float | None = Field(description="On the dataset's scale; null when the model only ranks.")
    rank: int
    because: list[MovieRef] = Field(
        default_factory=list, description="Rated movies that contributed most (EASE-ranked models only)."
    )


class UserList(BaseModel):
    user_id: int
    run_id: str
    source: Literal["personal", "popular"]
    model: str
    note: str | None = None
    items: list[Item]


class SimilarList(BaseModel):
    movie_id: int
    title: str
    run_id: str
    model: str
    items: list[Item]


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    movie_id: int = Field(ge=0, le=MAX_ID)
    rating: float = Field(allow_inf_nan=False, description="On the dataset's scale (see /health).")


class VisitorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratings: list[RatingIn] = Field(max_length=MAX_RATINGS, description=f"At most {MAX_RATINGS:,} ratings.")
    n: int = Field(10, ge=1, le=100)


class VisitorList(BaseModel):
    run_id: str
    source: Literal["foldin", "popular"]
    model: str
    family: str = Field(description="How the list was computed: ease, factors or popularity.")
    note: str
    ignored: list[int] = Field(description="Movie ids of the request the model does not know.")
    items: list[Item]


class MovieInfoOut(BaseModel):
    movie_id: int
    title: str
    year: int | None
    genres: list[str]
    n_ratings: int


class MovieSearch(BaseModel):
    run_id: str
    movies: list[MovieInfoOut]


class UserSample(BaseModel):
    run_id: str
    user_ids: list[int]


class Health(BaseModel):
    run_id: str
    as_of: str | None = None
    generated_at: str | None = None
    dataset: str | None = None
    model: str
    rows: int
    users: int
    top_n: int
    rating_min: float
    rating_max: float
    foldin: str
    last_error: str | None = None
