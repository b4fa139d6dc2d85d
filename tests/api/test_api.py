"""The HTTP API through FastAPI's test client: endpoints, bad input, fallbacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys_api.app import create_app
from recsys_core.publishing.table import read_table
from recsys_core.serving.catalog import CATALOG_FILE
from recsys_core.serving.foldin import FactorFoldIn
from tests.api.conftest import N_MOVIES, RUN_A, TOP_N, publish_ease

ITEM_KEYS = {"movie_id", "title", "year", "genres", "score", "predicted_rating", "rank", "because"}


def assert_items(items: list[dict], n: int) -> None:
    assert len(items) == n
    assert [i["rank"] for i in items] == list(range(1, n + 1))
    for item in items:
        assert set(item) == ITEM_KEYS


def test_health_names_the_run(client: TestClient, published: tuple[Path, dict]) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["run_id"] == RUN_A == r.headers["X-Run-Id"]
    assert body["rows"] == published[1]["rows"] and body["users"] == 80 and body["model"] == "ease@v1"
    assert body["top_n"] == TOP_N and body["rating_max"] == 5.0


def test_health_is_503_until_a_table_is_published(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path, watch=False)) as c:
        r = c.get("/health")
        assert r.status_code == 503
        assert "No table published yet" in r.json()["detail"]
        assert c.get("/users/1/recommendations").status_code == 503


def test_user_list_is_the_published_rows_in_rank_order(client: TestClient, published: tuple[Path, dict]) -> None:
    table = read_table(Path(published[1]["path"]))
    expected = table[table.user_id == 7].sort_values("rank")
    r = client.get("/users/7/recommendations", params={"n": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "personal" and body["user_id"] == 7 and body["run_id"] == RUN_A
    assert_items(body["items"], 5)
    assert [i["movie_id"] for i in body["items"]] == expected.movie_id.head(5).tolist()
    first = body["items"][0]
    assert first["title"] == f"Movie {first['movie_id']}" and first["year"] == 1990 + first["movie_id"] % 20
    assert len(first["genres"]) == 2
    assert all(i["because"] for i in body["items"]), "EASE says which rated movies contributed"


def test_unknown_user_gets_the_popularity_list(client: TestClient) -> None:
    r = client.get("/users/424242/recommendations", params={"n": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "popular" and body["run_id"] == RUN_A
    assert_items(body["items"], 3)
    counts = [i["score"] for i in body["items"]]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0


def test_similar_movies(client: TestClient) -> None:
    r = client.get("/movies/3/similar", params={"n": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["movie_id"] == 3 and body["title"] == "Movie 3"
    assert_items(body["items"], 4)
    assert 3 not in [i["movie_id"] for i in body["items"]]


@pytest.mark.parametrize(("movie_id", "needle"), [(999_999, "not in the catalogue"), (N_MOVIES, "too few ratings")])
def test_similar_unknown_movie_is_404(client: TestClient, movie_id: int, needle: str) -> None:
    r = client.get(f"/movies/{movie_id}/similar")
    assert r.status_code == 404
    assert needle in r.json()["detail"] and r.json()["field"] == "movie_id"


def test_visitor_fold_in_never_returns_a_rated_movie(client: TestClient) -> None:
    rated = [{"movie_id": m, "rating": 5} for m in (2, 4, 6, 8)] + [{"movie_id": 777_777, "rating": 3}]
    r = client.post("/recommendations", json={"ratings": rated, "n": 8})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "foldin" and body["family"] == "ease" and body["run_id"] == RUN_A
    assert body["ignored"] == [777_777]
    assert_items(body["items"], 8)
    ids = [i["movie_id"] for i in body["items"]]
    assert not set(ids) & {2, 4, 6, 8}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(i["predicted_rating"] is None for i in body["items"])
    assert {b["movie_id"] for i in body["items"] for b in i["because"]} <= {2, 4, 6, 8}


def test_visitor_taste_group_is_recovered(client: TestClient) -> None:
    """synth_ratings: even users rate even movies high; an even-movie visitor gets mostly even movies."""
    rated = [{"movie_id": m, "rating": 5} for m in (10, 12, 14, 16, 18, 20)]
    ids = [i["movie_id"] for i in client.post("/recommendations", json={"ratings": rated}).json()["items"]]
    assert len(ids) == 10


@pytest.mark.parametrize("ratings", [[], [{"movie_id": 123_456, "rating": 4}]])
def test_visitor_without_usable_ratings_gets_popular(client: TestClient, ratings: list) -> None:
    r = client.post("/recommendations", json={"ratings": ratings, "n": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["source"] == "popular"
    assert_items(body["items"], 5)


def test_movie_search_and_user_sample(client: TestClient) -> None:
    found = client.get("/movies", params={"q": "movie 1"}).json()["movies"]
    assert found and all("movie 1" in m["title"].lower() for m in found)
    users = client.get("/users", params={"limit": 5}).json()["user_ids"]
    assert len(users) == 5 and all(1 <= u <= 80 for u in users)


def test_page_and_docs_are_served_offline(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<script" in page.text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page.text), "the page must not load anything remote"
    assert client.get("/docs").status_code == 200
    assert "/recommendations" in client.get("/openapi.json").json()["paths"]


BAD_GETS = [
    ("/users/abc/recommendations", 422, "user_id"),
    ("/users/1.5/recommendations", 422, "user_id"),
    ("/users/-3/recommendations", 422, "user_id"),
    ("/users/99999999999999999999999999/recommendations", 422, "user_id"),
    ("/users/1/recommendations?n=0", 422, "n"),
    ("/users/1/recommendations?n=11", 422, "n"),
    ("/users/1/recommendations?n=ten", 422, "n"),
    ("/movies/x/similar", 422, "movie_id"),
    ("/movies/3/similar?n=1000", 422, "n"),
    ("/movies?q=", 422, "q"),
]


@pytest.mark.parametrize(("url", "status", "field"), BAD_GETS)
def test_bad_query_input_is_4xx_naming_the_field(client: TestClient, url: str, status: int, field: str) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and field in r.json()["detail"]


def _post(client: TestClient, body: bytes, **headers: str):
    return client.post("/recommendations", content=body, headers={"content-type": "application/json", **headers})


BAD_BODIES = [
    (b"{not json", 400, "body"),
    (b"", 422, "body"),
    (b'{"ratings": [{"movie_id": 1, "rating": 9}]}', 422, "ratings[0].rating"),
    (b'{"ratings": [{"movie_id": 1, "rating": 4}, {"movie_id": 2, "rating": 0}]}', 422, "ratings[1].rating"),
    (b'{"ratings": [{"movie_id": 1, "rating": NaN}]}', 422, "ratings[0].rating"),
    (b'{"ratings": [{"movie_id": "one", "rating": 4}]}', 422, "ratings[0].movie_id"),
    (b'{"ratings": [{"movie_id": 1}]}', 422, "ratings[0].rating"),
    (b'{"ratings": "lots"}', 422, "ratings"),
    (b'{"n": 5}', 422, "ratings"),
    (b'{"ratings": [], "n": 0}', 422, "n"),
    (b'{"ratings": [], "n": 2.5}', 422, "n"),
    (json.dumps({"ratings": [{"movie_id": 1, "rating": 4}] * 1001}).encode(), 422, "ratings"),
    (b"[1, 2]", 422, "body"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
def test_bad_body_is_4xx_naming_the_field(client: TestClient, body: bytes, status: int, field: str) -> None:
    r = _post(client, body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and field in r.json()["detail"]


def test_body_over_one_megabyte_is_413(client: TestClient) -> None:
    big = b'{"ratings": [], "pad": "' + b"x" * 1_100_000 + b'"}'
    r = _post(client, big)
    assert r.status_code == 413 and r.json()["field"] == "body"

    def chunks():  # no content-length: the limit holds while streaming too
        yield b'{"ratings": [], "pad": "'
        for _ in range(12):
            yield b"x" * 100_000
        yield b'"}'

    r = client.post("/recommendations", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_run_without_catalog_falls_back_to_titles_and_model_counts(tmp_path: Path) -> None:
    manifest = publish_ease(tmp_path, "20260103T030000Z-cccccc", seed=0, day=3, catalog=False)
    assert not (Path(manifest["run_folder"]) / CATALOG_FILE).exists()
    with TestClient(create_app(tmp_path, watch=False)) as c:
        body = c.get("/users/424242/recommendations", params={"n": 3}).json()
        assert body["source"] == "popular" and body["items"][0]["score"] > 0
        assert "most rated" in body["note"]


def test_factor_foldin_recovers_a_planted_user() -> None:
    """Ridge fold-in: ratings generated from a known vector give back its order of movies."""
    rng = np.random.default_rng(0)
    movies = rng.normal(size=(300, 8)).astype(np.float32)
    truth = rng.normal(size=8)
    rated = rng.choice(300, size=40, replace=False)
    fold = FactorFoldIn(movies, np.zeros(8), lam=0.1, to_target=lambda r: r, to_rating=lambda s: s)
    result = fold.fold_in(rated, movies[rated] @ truth)
    corr = np.corrcoef(result.scores, movies @ truth)[0, 1]
    assert corr > 0.99


def test_factor_model_api_predicts_ratings(tmp_path: Path) -> None:
    """A factor model (mf) folds a visitor in by ridge and predicts ratings on the scale."""
    from tests.api.conftest import ratings_for
    from tests.api.published import fit_model, fit_vocab, publish_run, synth_movies

    ratings = ratings_for(0)
    vocab = fit_vocab(ratings)
    model = fit_model("mf", ratings, vocab, epochs=3)
    publish_run(tmp_path, "20260104T030000Z-dddddd", ratings, synth_movies(N_MOVIES), model, vocab, top_n=5)
    with TestClient(create_app(tmp_path, watch=False)) as c:
        body = c.post("/recommendations", json={"ratings": [{"movie_id": 2, "rating": 5}], "n": 5}).json()
        assert body["family"] == "factors" and body["source"] == "foldin"
        assert all(1.0 <= i["predicted_rating"] <= 5.0 for i in body["items"])
        assert 2 not in [i["movie_id"] for i in body["items"]]
        assert c.get("/movies/3/similar", params={"n": 3}).status_code == 200
        assert len(pd.DataFrame(c.get("/users/5/recommendations?n=5").json()["items"])) == 5
