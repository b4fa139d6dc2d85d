"""Published runs for the API tests, built directly (EASE: no TensorFlow, well under a second)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys_api.app import create_app
from tests.api.published import fit_model, fit_vocab, publish_run, synth_movies
from tests.builders import synth_ratings

N_MOVIES = 60
TOP_N = 10
RUN_A, RUN_B = "20260101T030000Z-aaaaaa", "20260102T030000Z-bbbbbb"


def ratings_for(seed: int) -> pd.DataFrame:
    """80 users (ids 1..80) over 60 movies; movie 60 is never rated (in the catalogue only)."""
    ratings = synth_ratings(n_users=80, n_movies=N_MOVIES - 1, per_user=15, seed=seed)
    return ratings


def publish_ease(data_dir: Path, run_id: str, seed: int, day: int, **kwargs) -> dict:
    ratings = ratings_for(seed)
    vocab = fit_vocab(ratings)
    model = fit_model("ease", ratings, vocab, lambdas=[50.0])
    when = datetime(2026, 1, day, 3, tzinfo=UTC)
    return publish_run(
        data_dir, run_id, ratings, synth_movies(N_MOVIES), model, vocab, top_n=TOP_N, generated_at=when, **kwargs
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    data_dir = tmp_path_factory.mktemp("api-data")
    return data_dir, publish_ease(data_dir, RUN_A, seed=0, day=1)


@pytest.fixture(scope="module")
def client(published: tuple[Path, dict]) -> Iterator[TestClient]:
    with TestClient(create_app(published[0], watch=False)) as c:
        yield c
