"""Build small MovieLens-shaped archives for tests (never the real data)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

GENRES_100K = 19
T0_TREND = 1_578_268_800  # 2020-01-06 00:00 UTC, a Monday
WEEK = 7 * 86_400


def synth_ratings(
    n_users: int = 30, n_movies: int = 40, per_user: int = 12, seed: int = 0, half_stars: bool = False
) -> pd.DataFrame:
    """Ratings with a little structure (two taste groups) so models can learn something."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        group = u % 2
        movies = rng.choice(np.arange(1, n_movies + 1), size=min(per_user, n_movies), replace=False)
        for m in movies:
            base = 4.5 if (m % 2) == group else 2.0
            r = np.clip(base + rng.normal(0, 0.7), 1, 5)
            r = np.round(r * 2) / 2 if half_stars else np.round(r)
            if half_stars:
                r = max(r, 0.5)
            rows.append((u, int(m), float(r), 880_000_000 + int(rng.integers(0, 10_000_000))))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def trending_ratings(seed: int = 0) -> pd.DataFrame:
    """Each week 20 of 40 users rate 3 of movies 1-15 and the fortnight's hot movie (16, 17, 18)."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(6):
        for u in rng.choice(np.arange(1, 41), size=20, replace=False):
            for m in [*rng.choice(np.arange(1, 16), size=3, replace=False), 16 + w // 2]:
                rows.append(
                    (int(u), int(m), float(rng.integers(1, 6)), T0_TREND + w * WEEK + int(rng.integers(0, WEEK)))
                )
    frame = pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])
    return frame.drop_duplicates(["user_id", "movie_id"]).reset_index(drop=True)


def ml100k_item_lines(n_movies: int) -> list[str]:
    lines = []
    for m in range(1, n_movies + 1):
        flags = ["0"] * GENRES_100K
        flags[1 + m % 18] = "1"
        lines.append(f"{m}|Movie {m} ({1990 + m % 10})|01-Jan-{1990 + m % 10}||http://x/{m}|" + "|".join(flags))
    return lines


def build_ml100k_zip(
    path: Path,
    ratings: pd.DataFrame | None = None,
    n_movies: int = 40,
    *,
    folds: bool = True,
    item_lines: list[str] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Write an archive in the ml-100k layout: ml-100k/u.data, u.item and (optionally) u1/ua folds."""
    ratings = synth_ratings(n_movies=n_movies) if ratings is None else ratings
    data = "\n".join(f"{r.user_id}\t{r.movie_id}\t{int(r.rating)}\t{r.timestamp}" for r in ratings.itertuples()) + "\n"
    items = "\n".join(item_lines if item_lines is not None else ml100k_item_lines(n_movies)) + "\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", data)
        zf.writestr("ml-100k/u.item", items.encode("latin-1"))
        if folds:
            rng = np.random.default_rng(1)
            test_mask = rng.random(len(ratings)) < 0.2
            for name in ("u1", "ua"):
                for suffix, part in (("base", ratings[~test_mask]), ("test", ratings[test_mask])):
                    text = "".join(
                        f"{r.user_id}\t{r.movie_id}\t{int(r.rating)}\t{r.timestamp}\n" for r in part.itertuples()
                    )
                    zf.writestr(f"ml-100k/{name}.{suffix}", text)
        for name, blob in (extra or {}).items():
            zf.writestr(name, blob)
    return path


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def ratings_lines(ratings: pd.DataFrame, sep: str, *, half_stars: bool = False) -> list[str]:
    """One text line per rating: user, movie, rating, timestamp joined by ``sep``."""
    fmt = (lambda r: f"{r:.1f}") if half_stars else (lambda r: str(int(r)))
    return [sep.join((str(r.user_id), str(r.movie_id), fmt(r.rating), str(r.timestamp))) for r in ratings.itertuples()]


def ml1m_movie_lines(n_movies: int) -> list[str]:
    """movies.dat lines: MovieID::Title (Year)::Genre|Genre."""
    genres = ("Action", "Comedy", "Drama", "Children's", "Sci-Fi")
    return [f"{m}::Movie {m} ({1990 + m % 10})::{genres[m % 5]}|{genres[(m + 2) % 5]}" for m in range(1, n_movies + 1)]


def build_ml1m_zip(
    path: Path,
    ratings: pd.DataFrame | None = None,
    n_movies: int = 40,
    *,
    movie_lines: list[str] | None = None,
    users: bool = True,
    extra: dict[str, bytes | str] | None = None,
) -> Path:
    """Write an archive in the ml-1m layout: ml-1m/ratings.dat, movies.dat (latin-1), users.dat."""
    ratings = synth_ratings(n_movies=n_movies) if ratings is None else ratings
    members: dict[str, bytes | str] = {
        "ml-1m/ratings.dat": "\n".join(ratings_lines(ratings, "::")) + "\n",
        "ml-1m/movies.dat": (
            "\n".join(movie_lines if movie_lines is not None else ml1m_movie_lines(n_movies)) + "\n"
        ).encode("latin-1"),
    }
    if users:
        n_users = int(ratings["user_id"].max())
        members["ml-1m/users.dat"] = "".join(
            f"{u}::{'MF'[u % 2]}::{(18, 25, 35)[u % 3]}::{u % 21}::{55400 + u}\n" for u in range(1, n_users + 1)
        )
    members.update(extra or {})
    path.write_bytes(zip_bytes(members))
    return path


def csv_movies_text(n_movies: int) -> str:
    """movies.csv with the real files' quirks: quoted titles with commas, no year, no genres."""
    lines = ["movieId,title,genres"]
    for m in range(1, n_movies + 1):
        if m == 1:
            lines.append(f'{m},"American President, The ({1990 + m % 10})",Comedy|Drama|Romance')
        elif m == 2:
            lines.append(f"{m},Babylon 5,Sci-Fi")
        elif m == 3:
            lines.append(f"{m},Hyena Road (2015),(no genres listed)")
        else:
            lines.append(f"{m},Movie {m} ({1990 + m % 10}),Adventure|Children")
    return "\n".join(lines) + "\n"


def build_csv_zip(
    path: Path,
    ratings: pd.DataFrame | None = None,
    n_movies: int = 40,
    *,
    folder: str = "ml-latest-small",
    ratings_text: str | None = None,
    movies_text: str | bytes | None = None,
    extra: dict[str, bytes | str] | None = None,
) -> Path:
    """Write an archive in the CSV layout (ml-latest-small, ml-25m, ml-32m): half-star ratings."""
    if ratings_text is None:
        ratings = synth_ratings(n_movies=n_movies, half_stars=True) if ratings is None else ratings
        rows = ratings_lines(ratings, ",", half_stars=True)
        ratings_text = "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n"
    members: dict[str, bytes | str] = {
        f"{folder}/ratings.csv": ratings_text,
        f"{folder}/movies.csv": csv_movies_text(n_movies) if movies_text is None else movies_text,
        f"{folder}/README.txt": "synthetic test release\n",
    }
    members.update(extra or {})
    path.write_bytes(zip_bytes(members))
    return path
