"""The FastAPI app: lists from the latest published night, visitor fold-in, and the page.

Every handler takes the store's snapshot once and answers wholly from it, so one response
never mixes two runs; its run id is in the body and in the ``X-Run-Id`` header.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Query
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.responses import Response as RawResponse

from recsys_api.errors import MAX_BODY_BYTES, ApiError, BodyLimit, install_error_handlers
from recsys_api.lists import build_item, personal_items, popular_items, top_items
from recsys_api.schemas import (
    MAX_ID,
    Health,
    MovieInfoOut,
    MovieSearch,
    SimilarList,
    UserList,
    UserSample,
    VisitorList,
    VisitorRequest,
)
from recsys_api.store import Snapshot, SnapshotStore

RUN_HEADER = "X-Run-Id"
MAX_SIMILAR = 100

UserId = Annotated[int, PathParam(ge=0, le=MAX_ID, description="MovieLens user id")]
MovieId = Annotated[int, PathParam(ge=0, le=MAX_ID, description="MovieLens movie id")]


def create_app(data_dir: Path, *, poll_interval: float = 1.0, watch: bool = True) -> FastAPI:
    """The service for one data dir; ``watch`` polls ``_latest.json`` every ``poll_interval`` s."""
    store = SnapshotStore(Path(data_dir).resolve(), poll_interval=poll_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(store.refresh)  # the first snapshot before the first request
        if watch:
            store.start()
        try:
            yield
        finally:
            store.stop()

    app = FastAPI(
        title="recsys-nightly API",
        description="Lists from the latest published night, fold-in for visitors, similar movies.",
        version="1",
        lifespan=lifespan,
    )
    app.state.store = store
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    install_error_handlers(app)
    page = resources.files("recsys_api").joinpath("static/index.html").read_text(encoding="utf-8")

    def snapshot() -> Snapshot:
        snap = store.current
        if snap is None:
            why = f" Last load error: {store.last_error}" if store.last_error else ""
            raise ApiError(
                503,
                f"No table published yet under {store.manifest_path.parent} (no {store.manifest_path.name})."
                f" Run `recsys run --data-dir {store.data_dir}` (or `make run`); the API picks it up within"
                f" seconds.{why}",
            )
        return snap

    def reply(body: dict, snap: Snapshot) -> RawResponse:
        """Serialise once, skipping response-model re-validation: the bodies are built here."""
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        return RawResponse(payload, media_type="application/json", headers={RUN_HEADER: snap.run_id})

    def check_n(n: int, limit: int) -> None:
        if not 1 <= n <= limit:
            raise ApiError(422, f"n: must be between 1 and {limit} (got {n})", "n")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", response_model=Health)
    async def health() -> RawResponse:
        """The run being served; 503 until a table is published."""
        snap = snapshot()
        m = snap.manifest
        return reply(
            {
                "run_id": snap.run_id,
                "as_of": m.get("as_of"),
                "generated_at": m.get("generated_at"),
                "dataset": m.get("dataset"),
                "model": m.get("model", ""),
                "rows": int(m.get("rows", snap.index.n_rows)),
                "users": int(m.get("users", snap.index.n_users)),
                "top_n": snap.top_n,
                "rating_min": snap.rating_min,
                "rating_max": snap.rating_max,
                "foldin": snap.foldin.note,
                "last_error": store.last_error,
            },
            snap,
        )

    @app.get("/users/{user_id}/recommendations", response_model=UserList)
    async def user_recommendations(
        user_id: UserId, n: Annotated[int, Query(description="1..published N")] = 10
    ) -> RawResponse:
        """The user's published list; users not in the table get the night's popularity list."""
        snap = snapshot()
        check_n(n, snap.top_n)
        items = personal_items(snap, user_id, n)
        body = {"user_id": user_id, "run_id": snap.run_id, "model": snap.manifest.get("model", "")}
        if items is not None:
            return reply({**body, "source": "personal", "items": items}, snap)
        note = f"user {user_id} is not in the table of run {snap.run_id}: {snap.popularity_note}"
        return reply({**body, "source": "popular", "note": note, "items": popular_items(snap, n)}, snap)

    @app.get("/users", response_model=UserSample)
    async def sample_users(limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> RawResponse:
        """A spread of user ids in the table (for the page's picker)."""
        snap = snapshot()
        return reply({"run_id": snap.run_id, "user_ids": [int(u) for u in snap.index.sample_users(limit)]}, snap)

    @app.get("/movies/{movie_id}/similar", response_model=SimilarList)
    async def similar_movies(
        movie_id: MovieId, n: Annotated[int, Query(description=f"1..{MAX_SIMILAR}")] = 10
    ) -> RawResponse:
        """Nearest movies by the published model's movie vectors (cosine)."""
        snap = snapshot()
        check_n(n, MAX_SIMILAR)
        idx = snap.movie_idx(movie_id)
        if movie_id not in snap.movies and idx < 0:
            raise ApiError(404, f"movie_id: movie {movie_id} is not in the catalogue of run {snap.run_id}", "movie_id")
        if snap.neighbours is None:
            raise ApiError(
                501, f"The published model {snap.manifest.get('model')} has no movie vectors to compare.", "movie_id"
            )
        if idx < 0 or not snap.neighbours.covers(idx):
            raise ApiError(
                404,
                f"movie_id: movie {movie_id} has too few ratings to be covered by the model of run {snap.run_id}",
                "movie_id",
            )
        near, sims = snap.neighbours.nearest(idx, n)
        items = [
            build_item(snap, int(m), rank, float(s), None)
            for rank, (m, s) in enumerate(zip(snap.vocab.decode_movies(near), sims, strict=True), 1)
        ]
        title = snap.movies[movie_id].title if movie_id in snap.movies else f"movie {movie_id}"
        return reply(
            {
                "movie_id": movie_id,
                "title": title,
                "run_id": snap.run_id,
                "model": snap.manifest.get("model", ""),
                "items": items,
            },
            snap,
        )

    @app.get("/movies", response_model=MovieSearch)
    async def search_movies(
        q: Annotated[str, Query(min_length=1, max_length=200, description="Part of a title")],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> RawResponse:
        """Movies whose title contains ``q`` (case-insensitive), most rated first."""
        snap = snapshot()
        needle = q.strip().lower()
        found: list[dict] = []
        for movie_id, title in snap.search_order:
            if needle in title:
                info = snap.movies[movie_id]
                n_ratings = snap.popular_counts.get(movie_id, 0)
                found.append(MovieInfoOut(movie_id=movie_id, n_ratings=n_ratings, **info.__dict__).model_dump())
                if len(found) == limit:
                    break
        return reply({"run_id": snap.run_id, "movies": found}, snap)

    @app.post("/recommendations", response_model=VisitorList)
    async def visitor_recommendations(payload: VisitorRequest) -> RawResponse:
        """A list for a visitor from a few ratings, folded into the published model now."""
        snap = snapshot()
        for i, r in enumerate(payload.ratings):
            if not snap.rating_min <= r.rating <= snap.rating_max:
                raise ApiError(
                    422,
                    f"ratings[{i}].rating: {r.rating:g} is off this dataset's scale "
                    f"{snap.rating_min:g}..{snap.rating_max:g}",
                    f"ratings[{i}].rating",
                )
        by_movie: dict[int, list[float]] = {}
        for r in payload.ratings:
            by_movie.setdefault(r.movie_id, []).append(r.rating)
        known = {m: float(np.mean(v)) for m, v in by_movie.items() if snap.movie_idx(m) >= 0}
        ignored = sorted(m for m in by_movie if m not in known)
        rated_idx = np.array([snap.movie_idx(m) for m in known], np.int64)
        ratings = np.array(list(known.values()), np.float64)
        result = snap.foldin.fold_in(rated_idx, ratings) if len(rated_idx) else None
        body = {
            "run_id": snap.run_id,
            "model": snap.manifest.get("model", ""),
            "family": snap.foldin.family,
            "ignored": ignored,
        }
        if result is None:
            why = snap.foldin.note if snap.foldin.family == "popularity" else "no rating the model can use"
            items = popular_items(snap, payload.n, exclude=set(by_movie))
            return reply({**body, "source": "popular", "note": f"{why}; {snap.popularity_note}", "items": items}, snap)
        scores = result.scores.copy()
        scores[rated_idx] = -np.inf  # never return a movie of the request
        items = top_items(snap, scores, result.predicted, payload.n, rated_idx, snap.foldin.row_values(ratings))
        return reply({**body, "source": "foldin", "note": snap.foldin.note, "items": items}, snap)

    return app
