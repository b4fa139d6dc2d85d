"""Benchmark: the HTTP API on an ml-25m-size published table, 1 and 16 concurrent clients.

    python -m benchmarks.api [--users 162541 --movies 59047 --ratings 25000000]
        [--requests 2000] [--seconds 30] [--work-dir DIR]

The table is built directly with the project's own functions, not by a full nightly run
(9.5 min on 2 cores): ratings drawn by ``recsys_core.data.synth`` (the generator behind
``recsys synth``: power-law popularity and activity, half stars), a real EASE fit (5,000
covered movies, as the default ranker at this size), every user scored by
``recsys_core.serving.topn.recommend_top_n`` and published with ``recsys_core.publishing.table``
(staging, promote, ``_latest.json``) plus ``catalog.parquet``. Then ``recsys api`` runs as its
own process on 127.0.0.1 and bounded request loops (count and time) measure user lookups and
visitor fold-in. Prints one JSON line and writes benchmarks/results/api.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "api.md"
MACHINE = "2-core x86_64 VM, 24 GB RAM, no GPU (client and server share the 2 cores)"
REPO = Path(__file__).resolve().parents[1]


def draw_release(n_users: int, n_movies: int, n_ratings: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical ratings and movies frames from the `recsys synth` generator, in memory."""
    from recsys_core.data import synth
    from recsys_core.data.readers import split_genres, split_title_year

    world = synth._draw_world(n_users, n_movies, n_ratings, seed)
    starts = np.concatenate([[0], np.cumsum(world.counts)])
    parts = []
    for chunk, (lo, hi) in enumerate(synth._user_chunks(starts)):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, chunk]))
        users, movies = synth.draw_pairs(world.counts[lo:hi], world.popularity, rng)
        halves = synth.draw_ratings(users, movies, world.movie_effect, world.movie_taste, rng)
        parts.append(
            pd.DataFrame(
                {
                    "user_id": (users + lo + 1).astype(np.int64),
                    "movie_id": world.movie_ids[movies].astype(np.int64),
                    "rating": (halves / 2).astype(np.float32),
                }
            )
        )
    ratings = pd.concat(parts, ignore_index=True)
    raw = synth.build_movies(world.movie_ids, np.random.default_rng(np.random.SeedSequence([seed, 2])))
    title, year = split_title_year(raw["title"])
    movies = pd.DataFrame(
        {
            "movie_id": raw["movieId"].astype(np.int64),
            "title": title,
            "year": year,
            "genres": split_genres(raw["genres"]),
        }
    )
    return ratings, movies


def build_published_table(data_dir: Path, n_users: int, n_movies: int, n_ratings: int) -> dict[str, Any]:
    """Draw, fit EASE, score every user and publish; returns the manifest and stage seconds."""
    from recsys_core.prep.encoding import fit_vocabulary
    from tests.api.published import fit_model, publish_run

    timings: dict[str, float] = {}
    t = time.perf_counter()
    ratings, movies = draw_release(n_users, n_movies, n_ratings)
    timings["draw"] = time.perf_counter() - t
    t = time.perf_counter()
    vocab = fit_vocabulary(ratings)
    model = fit_model("ease", ratings, vocab, lambdas=[400.0])
    model.rating_min, model.rating_max = 0.5, 5.0
    timings["fit_ease"] = time.perf_counter() - t
    t = time.perf_counter()
    manifest = publish_run(data_dir, "20260301T030000Z-bench0", ratings, movies, model, vocab, top_n=10, n_threads=2)
    timings["score_publish"] = time.perf_counter() - t
    popular = ratings["movie_id"].value_counts().index[:3000].to_numpy(np.int64)
    np.save(data_dir / "popular_ids.npy", popular)
    return {"manifest": manifest, "build_seconds": timings, "n_ratings": len(ratings)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> tuple[subprocess.Popen, float]:
    """`recsys api` as its own process; returns it and the seconds until /health answered 200."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "recsys_cli.main", "api", "--data-dir", str(data_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.perf_counter()
    while time.perf_counter() - t < 300:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"recsys api exited with {proc.returncode}")
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("recsys api did not answer /health within 300 s")


def rss_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory of the server process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    return response.status


def post_json(conn: http.client.HTTPConnection, path: str, body: dict) -> int:
    conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def run_loop(port: int, clients: int, total: int, seconds: float, make_request) -> dict[str, Any]:
    """``clients`` threads, each with its own keep-alive connection, ``total`` requests in all.

    The stdlib client (http.client) costs the shared CPU less than httpx does."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.perf_counter() + seconds

    def worker(k: int) -> None:
        rng = np.random.default_rng(k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(total // clients):
                if time.perf_counter() > deadline:
                    return
                t = time.perf_counter()
                try:
                    ok = make_request(conn, rng) == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                latencies[k].append(time.perf_counter() - t)
                errors[k] += not ok
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - start
    flat = np.array([x for lat in latencies for x in lat]) * 1000
    return {
        "clients": clients,
        "requests": len(flat),
        "errors": int(sum(errors)),
        "rps": round(len(flat) / wall, 1),
        "p50_ms": round(float(np.percentile(flat, 50)), 2),
        "p99_ms": round(float(np.percentile(flat, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_541)
    parser.add_argument("--movies", type=int, default=59_047)
    parser.add_argument("--ratings", type=int, default=25_000_000)
    parser.add_argument("--requests", type=int, default=2_000, help="per loop, across all clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per loop")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep (and reuse) the published table here")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite benchmarks/results/api.md")
    args = parser.parse_args()

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="recsys-api-bench-"))
    data_dir = work / "data"
    built_file = work / "build.json"
    if not (data_dir / "recommendations" / "_latest.json").is_file():
        built = build_published_table(data_dir, args.users, args.movies, args.ratings)
        built_file.write_text(json.dumps({k: v for k, v in built.items() if k != "manifest"}))
    built = json.loads(built_file.read_text()) if built_file.is_file() else {}
    manifest = json.loads((data_dir / "recommendations" / "_latest.json").read_text())
    popular = np.load(data_dir / "popular_ids.npy")
    user_ids = np.arange(1, args.users + 1)
    port = free_port()
    proc, startup = start_server(data_dir, port)

    def lookup(conn: http.client.HTTPConnection, rng: np.random.Generator) -> int:
        return get(conn, f"/users/{int(rng.choice(user_ids))}/recommendations?n=10")

    def fold_in(conn: http.client.HTTPConnection, rng: np.random.Generator) -> int:
        picks = rng.choice(popular, size=int(rng.integers(5, 21)), replace=False)
        body = {"ratings": [{"movie_id": int(m), "rating": float(rng.integers(1, 11)) / 2} for m in picks], "n": 10}
        return post_json(conn, "/recommendations", body)

    loops: list[dict[str, Any]] = []
    try:
        rss_idle = rss_mb(proc.pid)
        for name, fn in (("user lookup", lookup), ("fold-in", fold_in)):
            run_loop(port, 1, 50, 10, fn)  # warm-up, not reported
            for clients in (1, 16):
                result = run_loop(port, clients, args.requests, args.seconds, fn)
                loops.append(
                    {"endpoint": name, **result, **{f"server_{k}_mb": round(v) for k, v in rss_mb(proc.pid).items()}}
                )
                print(json.dumps(loops[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = {
        "rows": manifest["rows"],
        "users": manifest["users"],
        "model": manifest["model"],
        "server_startup_s": round(startup, 1),
        "server_idle_rss_mb": round(rss_idle["VmRSS"]),
        "build": built.get("build_seconds"),
        "n_ratings": built.get("n_ratings"),
        "loops": loops,
    }
    print(json.dumps(summary))
    if not args.no_write:
        write_results(summary, args)
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)


def write_results(summary: dict[str, Any], args: argparse.Namespace) -> None:
    rows = "\n".join(
        f"| {r['endpoint']} | {r['clients']} | {r['requests']:,} | {r['errors']} | {r['rps']} | {r['p50_ms']} | "
        f"{r['p99_ms']} | {r.get('server_VmRSS_mb', '-')} | {r.get('server_VmHWM_mb', '-')} |"
        for r in summary["loops"]
    )
    build = summary["build"] or {}
    text = f"""# HTTP API benchmark (`python -m benchmarks.api`)

Machine: {MACHINE}; Python {platform.python_version()}. Client threads (stdlib http.client, one
keep-alive connection each) and the server (`recsys api`: one uvicorn process) run on the same 2 cores,
so client overhead is inside every latency below.

Table: {summary["rows"]:,} rows for {summary["users"]:,} users, model `{summary["model"]}`, built
directly with the project's functions (not a full nightly run, 9.5 min here): {summary["n_ratings"] or "?":,}
ratings drawn by the `recsys synth` generator ({args.users:,} users x {args.movies:,} movies),
a real EASE fit (5,000 covered movies) {build.get("fit_ease", 0):.0f} s, every user scored by
`recommend_top_n` and published with `recsys_core.publishing.table` {build.get("score_publish", 0):.0f} s.
Server start to first 200 on /health: {summary["server_startup_s"]} s; idle RSS
{summary["server_idle_rss_mb"]} MB.

Loops: at most {args.requests:,} requests and {args.seconds:.0f} s each, on 127.0.0.1, after a 50-request
warm-up. User lookups pick random users of the table (`GET /users/{{id}}/recommendations?n=10`);
fold-in posts 5-20 random half-star ratings of the 3,000 most rated movies (`POST /recommendations`,
n=10).

| endpoint | clients | requests | errors | req/s | p50 ms | p99 ms | server RSS MB | server peak RSS MB |
|---|---|---|---|---|---|---|---|---|
{rows}

Targets: 0 errors; user lookup p99 < 20 ms at 16 clients; fold-in p99 < 100 ms.
"""
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
