"""Replay benchmark: a release replayed night by night, each night's lists scored on the next week.

For each weekly night t of a release's last weeks, as the nightly flow would have run then:

- the release is read once and cleaned like the pipeline (``pipeline.merge_and_average``; the
  Great Expectations gate is skipped), then cut at t (``nights.cutoff.before_cutoff``: ratings
  strictly before t 00:00 UTC);
- the vocabulary and the scale profile are fitted on what t sees, the model is trained on ALL
  those ratings with ``pipeline.train`` (what the nightly flow publishes after its refit), and
  every user's top-N unseen movies are scored with ``serving.topn.recommend_top_n``;
- the lists are scored with ``nights.online.online_metrics`` against the ratings of
  [t, t + 7 days), which also scores popularity (most rated before t, seen excluded);
- staleness: the lists of night t - 7 days, held unchanged, are scored against the same window.

The replay ends where the release does: ``end`` is the day after its last rating (UTC), the
nights are ``end - 7 * weeks``, ..., ``end - 7`` days, so the windows tile its last ``weeks``
weeks (a night at ``end`` itself has no ratings after it to be judged on). One extra night
before the first is trained only for its lists, so the first night has a stale figure too.

    python -m benchmarks.replay [--datasets ml-100k,ml-latest-small] [--weeks N | name=N,...]
        [--model combined] [--top-n 10] [--seed 42] [--limit-nights K] [--data-dir DIR]
        [--out benchmarks/results/replay.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "replay.md"
DEFAULT_WEEKS = {"ml-100k": 20, "ml-latest-small": 52}
WEEK = timedelta(days=7)
WEEK_SECONDS = 7 * 86_400
ROLES = ("model", "popularity", "stale")


# --- nights ------------------------------------------------------------------------------------


def replay_nights(last_timestamp: int, weeks: int) -> list[date]:
    """The ``weeks`` weekly nights whose windows tile the release's last weeks, oldest first.

    ``end`` is the UTC day after the last rating; the nights are end - 7*weeks, ..., end - 7.
    """
    from recsys_core.nights.calendar import date_of_seconds

    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, got {weeks}")
    end = date_of_seconds(last_timestamp) + timedelta(days=1)
    return [end - WEEK * k for k in range(weeks, 0, -1)]


# --- one night ---------------------------------------------------------------------------------


def night_lists(
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    spec: Any,
    night: date,
    *,
    model: str,
    top_n: int,
    seed: int,
    work_dir: Path,
    trend: bool = True,
) -> dict[str, Any]:
    """Train on everything before ``night`` and score every user's top-N: the night's lists as the flow
    publishes them, with the night's trend (``serving/trend.py``, chosen on the week before it; off
    with ``trend=False``) and the default exploration to 15% catalogue coverage after it."""
    from recsys_core import pipeline
    from recsys_core.config import NightlyConfig
    from recsys_core.evaluation.metrics import catalogue_coverage
    from recsys_core.nights.calendar import cutoff_seconds
    from recsys_core.nights.cutoff import before_cutoff
    from recsys_core.prep.encoding import fit_vocabulary
    from recsys_core.prep.interactions import to_interactions
    from recsys_core.serving.explore import explore_top_n
    from recsys_core.serving.scorers import to_portable_scorer
    from recsys_core.serving.topn import TopN, recommend_top_n
    from recsys_core.serving.trend import TrendChoice, trend_depth

    start = time.perf_counter()
    seen_ratings = before_cutoff(ratings, cutoff_seconds(night))
    vocab = fit_vocabulary(seen_ratings)
    scale = pipeline.decide_scale(seen_ratings, vocab)
    trained = pipeline.train(
        model, seen_ratings, vocab, spec=spec, scale=scale, movies=movies, seed=seed, work_dir=work_dir
    )
    seen = to_interactions(seen_ratings, vocab).to_csr()
    cutoff = cutoff_seconds(night)
    cfg = NightlyConfig(top_n=top_n, k=top_n, seed=seed, trend=trend)  # the night's defaults
    choice = (
        pipeline.choose_night_trend(
            trained.model,
            seen_ratings,
            vocab,
            spec=spec,
            scale=scale,
            cutoff=cutoff,
            depth=trend_depth(top_n, vocab.n_movies, pipeline.explore_candidates(cfg, vocab.n_movies)),
            k=top_n,
            movies=movies,
            seed=seed,
            work_dir=work_dir,
        )
        if trend
        else TrendChoice(reason="off")
    )
    policy = cfg.explore
    top = recommend_top_n(to_portable_scorer(trained.model), seen, pipeline.scoring_depth(cfg, vocab.n_movies, choice))
    top = pipeline.apply_trend(
        top, choice, seen, pipeline.night_trend_prior(seen_ratings, vocab, cutoff, choice.days, choice.newness)
    )
    before = catalogue_coverage(top.movie_idx[:, :top_n], vocab.n_movies)
    top = explore_top_n(top, top_n, policy, vocab.n_movies) if policy.active else top
    top = TopN(top.user_idx, top.movie_idx[:, :top_n], top.scores[:, :top_n])
    after = catalogue_coverage(top.movie_idx, vocab.n_movies)
    valid = top.valid()
    rows, cols = np.nonzero(valid)
    lists = pd.DataFrame(
        {
            "user_id": vocab.decode_users(top.user_idx[rows]),
            "movie_id": vocab.decode_movies(top.movie_idx[rows, cols]),
            "rank": (cols + 1).astype(np.int16),
        }
    )
    settings = getattr(trained.model, "settings", None)  # what a self-tuning model chose (recency_ease)
    return {
        "lists": lists,
        "label": trained.model.label,
        "settings": settings() if callable(settings) else None,
        "trend": {key: value for key, value in choice.summary().items() if key != "trials"},
        "coverage": {"before_explore": round(before, 4), "published": round(after, 4)},
        "scale": scale.name,
        "train_ratings": len(seen_ratings),
        "train_users": vocab.n_users,
        "train_movies": vocab.n_movies,
        "train_s": trained.seconds,
        "lists_s": time.perf_counter() - start,
    }


def score_night(
    lists: pd.DataFrame, stale: pd.DataFrame | None, ratings: pd.DataFrame, night: date, top_n: int
) -> dict[str, Any]:
    """Tonight's lists (with popularity) and last week's lists on [night, night + 7 days)."""
    from recsys_core.nights.calendar import cutoff_seconds
    from recsys_core.nights.cutoff import before_cutoff
    from recsys_core.nights.online import online_metrics

    start = cutoff_seconds(night)
    end = start + WEEK_SECONDS
    through = before_cutoff(ratings, end)  # the cleaned ratings as of the window's end
    now = online_metrics(lists, through, window_start=start, window_end=end, k=top_n)
    old = None if stale is None else online_metrics(stale, through, window_start=start, window_end=end, k=top_n)
    ts = through["timestamp"].to_numpy()
    in_window = through.loc[ts >= start, "user_id"]
    return {
        "model": now,
        "popularity": now["baselines"]["popularity"],
        "stale": old,
        "window_users": int(in_window.nunique()),
        "window_ratings_known_users": int(in_window.isin(lists["user_id"].unique()).sum()),
    }


def _trend_choice(trend: dict[str, Any] | None) -> str:
    if not trend or trend.get("reason"):
        return "off"
    if not trend["active"]:
        return "0"
    newness = trend.get("newness") or 0.0  # a record from before newness existed has none
    return f"{trend['days']} d x {trend['beta']:g}" + (f", newness {newness:g}" if newness else "")


def _trend_week(trend: dict[str, Any] | None) -> str:
    """The week before the night: the ranking's NDCG@k, and the chosen weight's."""
    if not trend or trend.get("ndcg_ranked") is None:
        return "-"
    return f"{trend['ndcg_ranked']:.3f} -> {trend['ndcg_trend']:.3f}"


def _coverage(coverage: dict[str, float] | None) -> str:
    """Catalogue coverage of the lists before exploration and as published."""
    if not coverage:
        return "-"
    return f"{coverage['before_explore']:.3f} -> {coverage['published']:.3f}"


def night_row(
    dataset: str, night: date, made: dict[str, Any], scored: dict[str, Any], total_s: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "dataset": dataset,
        "night": night.isoformat(),
        "window_ratings": scored["model"]["window_ratings"],
        "window_users": scored["window_users"],
        "users_scored": scored["model"]["users"],
        "window_ratings_known_users": scored["window_ratings_known_users"],
        "train_ratings": made["train_ratings"],
        "train_users": made["train_users"],
        "train_movies": made["train_movies"],
        "model_label": made["label"],
        "scale": made["scale"],
        "train_s": round(made["train_s"], 2),
        "total_s": round(total_s, 2),
        "model_settings": made.get("settings"),
        "coverage": _coverage(made.get("coverage")),
        "trend": made.get("trend"),
        "trend_choice": _trend_choice(made.get("trend")),
        "trend_week": _trend_week(made.get("trend")),
    }
    for role in ROLES:
        metrics = scored[role] or {}
        row[f"{role}_users"] = metrics.get("users")
        for key in ("ndcg_at_k", "hit_rate_at_k", "precision_at_k", "recall_at_k"):
            row[f"{role}_{key}"] = metrics.get(key)
    return row


# --- one release -------------------------------------------------------------------------------


def load_release(path: Path, name: str) -> dict[str, Any]:
    """Read once and clean like the pipeline (no Great Expectations gate)."""
    from recsys_core import pipeline
    from recsys_core.data.datasets import get_dataset
    from recsys_core.data.readers import read_release

    spec = get_dataset(name)
    release = read_release(path, spec.layout, with_folds=False)
    duplicates = int(release.ratings.duplicated(["user_id", "movie_id"]).sum())
    ratings = pipeline.merge_and_average(release.ratings, release.movies)
    return {
        "spec": spec,
        "movies": release.movies,
        "ratings": ratings,
        "raw_ratings": len(release.ratings),
        "duplicates": duplicates,
    }


def replay_dataset(
    name: str,
    path: Path,
    *,
    weeks: int,
    model: str,
    top_n: int,
    seed: int,
    limit_nights: int | None = None,
    sink: list[dict[str, Any]] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    trend: bool = True,
) -> dict[str, Any]:
    """Every night of the release's last ``weeks`` weeks (the last ``limit_nights`` of them when set).

    The release's record is appended to ``sink`` before the first night, its rows as they come,
    and ``on_row`` is called after each night (to write partial results).
    """
    data = load_release(path, name)
    ratings = data["ratings"]
    nights = replay_nights(int(ratings["timestamp"].max()), weeks)
    if limit_nights is not None:
        nights = nights[-limit_nights:]
    warmup = nights[0] - WEEK
    info = {
        "dataset": name,
        "archive": str(path),
        "raw_ratings": data["raw_ratings"],
        "duplicate_pairs": data["duplicates"],
        "ratings": len(ratings),
        "first_rating": _day(ratings["timestamp"].min()),
        "last_rating": _day(ratings["timestamp"].max()),
        "weeks": weeks,
        "nights": [n.isoformat() for n in nights],
        "warmup_night": warmup.isoformat(),
        "rows": [],
    }
    if sink is not None:
        sink.append(info)
    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        options = {"model": model, "top_n": top_n, "seed": seed, "work_dir": Path(tmp), "trend": trend}
        lists_for = partial(night_lists, ratings, data["movies"], data["spec"], **options)
        made = lists_for(warmup)
        info["warmup_train_s"] = round(made["train_s"], 2)
        previous = made["lists"]
        for night in nights:
            start = time.perf_counter()
            made = lists_for(night)
            scored = score_night(made["lists"], previous, ratings, night, top_n)
            row = night_row(name, night, made, scored, time.perf_counter() - start)
            info["rows"].append(row)
            info["summary"] = summarise(info["rows"])
            previous = made["lists"]
            if on_row is not None:
                on_row(row)
    info["summary"] = summarise(info["rows"])
    return info


def _day(seconds: Any) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).date().isoformat()


# --- summary -----------------------------------------------------------------------------------


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over nights (unweighted); the model/popularity NDCG ratio two ways.

    ``mean_ratio``: the mean over nights of model NDCG / popularity NDCG, nights where
    popularity's NDCG is 0 or undefined left out. ``ratio_of_means``: mean model NDCG over
    mean popularity NDCG, over those same nights.
    """
    out: dict[str, Any] = {"nights": len(rows)}
    for role in ROLES:
        for key in ("ndcg_at_k", "hit_rate_at_k"):
            values = [r[f"{role}_{key}"] for r in rows]
            out[f"{role}_{key}"] = _mean(values)
            out[f"{role}_{key}_nights"] = sum(v is not None for v in values)
    pairs = [
        (r["model_ndcg_at_k"], r["popularity_ndcg_at_k"])
        for r in rows
        if r["model_ndcg_at_k"] is not None and r["popularity_ndcg_at_k"]
    ]
    out["ratio_nights"] = len(pairs)
    out["mean_ratio"] = float(np.mean([m / p for m, p in pairs])) if pairs else None
    out["ratio_of_means"] = float(np.mean([m for m, _ in pairs]) / np.mean([p for _, p in pairs])) if pairs else None
    stale_pairs = [(r["model_ndcg_at_k"], r["stale_ndcg_at_k"]) for r in rows if r["stale_ndcg_at_k"] is not None]
    stale_pairs = [(m, s) for m, s in stale_pairs if m is not None]
    out["stale_ratio_of_means"] = (
        float(np.mean([s for _, s in stale_pairs]) / np.mean([m for m, _ in stale_pairs]))
        if stale_pairs and np.mean([m for m, _ in stale_pairs])
        else None
    )
    out["mean_train_s"] = _mean([r["train_s"] for r in rows])
    out["mean_total_s"] = _mean([r["total_s"] for r in rows])
    out["median_total_s"] = float(np.median([r["total_s"] for r in rows])) if rows else None
    out["mean_users_scored"] = _mean([r.get("users_scored") for r in rows])
    trends = [r.get("trend") or {} for r in rows]
    out["trend_nights"] = sum(bool(t.get("active")) for t in trends)
    out["mean_trend_fit_s"] = _mean([t.get("fit_seconds") for t in trends])
    out["mean_window_users"] = _mean([r.get("window_users") for r in rows])
    both = [(r["model_ndcg_at_k"], r["popularity_ndcg_at_k"]) for r in rows]
    both = [(m, p) for m, p in both if m is not None and p is not None]
    out["nights_model_above_popularity"] = sum(m > p for m, p in both)
    out["nights_model_below_popularity"] = sum(m < p for m, p in both)
    out["nights_popularity_zero"] = sum(p == 0 for _, p in both)
    return out


PROTOCOL = (
    "Protocol. Each release is read once and cleaned with `pipeline.merge_and_average` (titles joined, "
    "duplicate (user, movie) ratings averaged, latest timestamp kept); **the Great Expectations gate is "
    "skipped**. The replay ends on the day after the release's last rating (UTC); the nights are every 7 "
    "days before it, so their windows tile the release's last weeks. For a night t, only ratings strictly"
    " before t 00:00 UTC are seen (`nights.cutoff.before_cutoff`): the vocabulary and scale profile are "
    "fitted on them, the model is trained on all of them with `pipeline.train` (as the nightly refit "
    "does: its 5% early-stopping slice is cut from them), and every user's top-N unseen movies are scored"
    " with `recommend_top_n`; the night's trend (`serving/trend.py`, as the flow does it) is then chosen"
    " on the week before t (the model's ranking part refitted on the ratings before that week, its "
    "settings fixed; `trend days x weight`, with the newness exponent when above 0, 0 when the ranking "
    "alone did best on that week, `week before`"
    " the NDCG@k there of the ranking and of the chosen weight) and applied to each user's top 200; the "
    "default exploration (`serving/explore.py`, to 15% catalogue coverage) then runs as in the flow "
    "(`coverage`: of the lists before it and as published). "
    "`nights.online.online_metrics` scores the lists against the ratings of [t, "
    "t + 7 days): every movie a user rated in the window is relevant (binary gains); `window users` rated"
    " in the window; `users scored` are those of them with a list (users first seen in the window have "
    "none, `of scored users` counts their window ratings); hit = at least one of the top-k rated in the "
    "window. Popularity (pop) is the k most-rated movies before t the user has not rated. `stale` scores "
    "night t - 7 days' lists, unchanged, on night t's window (users new in between have no stale list; "
    "movies rated in between are not removed from it): what a week-old table costs. One extra night "
    "before the first is trained only for its lists, so the first night has a stale figure. `train s` is "
    "the fit alone; `night s` is cut + vocabulary + fit + trend choice + scoring + online metrics."
)


# --- report ------------------------------------------------------------------------------------


def describe_machine() -> str:
    """CPU model and cores, memory, as measured here (the other benchmarks state the same)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ram = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB RAM"
    except (ValueError, OSError, AttributeError):
        ram = "RAM unknown"
    return f"{os.cpu_count()}-core {cpu} ({platform.machine()}), {ram}, no GPU"


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _f(value: Any, fmt: str = "{:.4f}") -> str:
    return "-" if value is None else fmt.format(value)


ROW_COLUMNS = (
    ("night", "night", "{}"),
    ("window_users", "window users", "{:,}"),
    ("users_scored", "users scored", "{:,}"),
    ("window_ratings", "window ratings", "{:,}"),
    ("window_ratings_known_users", "of scored users", "{:,}"),
    ("train_ratings", "train ratings", "{:,}"),
    ("model_ndcg_at_k", "model NDCG@k", "{:.4f}"),
    ("model_hit_rate_at_k", "model hit", "{:.3f}"),
    ("popularity_ndcg_at_k", "pop NDCG@k", "{:.4f}"),
    ("popularity_hit_rate_at_k", "pop hit", "{:.3f}"),
    ("stale_ndcg_at_k", "stale NDCG@k", "{:.4f}"),
    ("stale_hit_rate_at_k", "stale hit", "{:.3f}"),
    ("stale_users", "stale users", "{:,}"),
    ("trend_choice", "trend days x weight", "{}"),
    ("trend_week", "week before: ranked -> trend", "{}"),
    ("coverage", "coverage: lists -> explored", "{}"),
    ("train_s", "train s", "{:.1f}"),
    ("total_s", "night s", "{:.1f}"),
)


def format_row(row: dict[str, Any]) -> str:
    return "| " + " | ".join(_f(row.get(key), fmt) for key, _, fmt in ROW_COLUMNS) + " |"


def render_markdown(report: dict[str, Any]) -> str:
    k = report["top_n"]
    lines = [
        "# Replay: nightly lists scored on the following week's ratings",
        "",
        f"Machine: {report['machine']}; shared with other work (seconds are wall time and noisy); load "
        f"average (1/5/15 min) {report['load_start']} at the start, {report['load_end']} at the end. "
        f"Python {report['python']}."
        + (
            f" Wall time of the whole run{' so far' if report.get('partial') else ''}: {report['run_s'] / 60:.0f} min"
            + (f" ({report['run_s_note']})" if report.get("run_s_note") else "")
            + "."
            if report.get("run_s")
            else ""
        ),
        f"Command: `{report['command']}`. Generated {report['generated']}"
        + (" (**partial: the run was still going when this was written**)" if report.get("partial") else "")
        + ".",
        f"Model `{report['model']}` (the nightly default is `{report['default_model']}`); top-N {k}, metrics at "
        f"k={k}; seed {report['seed']}; weeks {report['weeks']}; trend {'on' if report.get('trend', True) else 'off'}"
        + (f"; only the last {report['limit_nights']} night(s) per release" if report.get("limit_nights") else "")
        + ".",
        "",
        PROTOCOL,
        "",
    ]
    for info in report["datasets"]:
        lines += render_dataset(info, k)
    for name, reason in report.get("skipped", {}).items():
        lines += [f"## {name}", "", f"Skipped: {reason}", ""]
    return "\n".join(lines)


def render_dataset(info: dict[str, Any], k: int) -> list[str]:
    titles = [title.replace("@k", f"@{k}") for _, title, _ in ROW_COLUMNS]
    s = summarise(info["rows"])
    label = info["rows"][0]["model_label"] if info["rows"] else "-"
    lines = [
        f"## {info['dataset']}",
        "",
        f"`{info['archive']}`: {info['raw_ratings']:,} ratings read, {info['duplicate_pairs']:,} duplicate "
        f"(user, movie) pairs averaged, {info['ratings']:,} after cleaning, from {info['first_rating']} to "
        f"{info['last_rating']}. {info['weeks']} weekly nights, {info['nights'][0]} to {info['nights'][-1]}"
        f" ({len(info['rows'])} replayed); warm-up night {info['warmup_night']} (lists only, fit "
        f"{_f(info.get('warmup_train_s'), '{:.1f}')} s). Model: `{label}`, "
        f"scale profile {', '.join(sorted({r['scale'] for r in info['rows']})) or '-'}.",
        "",
        "| " + " | ".join(titles) + " |",
        "|" + "|".join("---" if key == "night" else "---:" for key, _, _ in ROW_COLUMNS) + "|",
        *(format_row(r) for r in info["rows"]),
        "",
    ]
    if not info["rows"]:
        return lines
    lines += [
        f"Summary over {s['nights']} nights (unweighted means over nights; a night without users in its window "
        "counts for no mean):",
        "",
        f"| | NDCG@{k} | hit rate@{k} | nights |",
        "|---|---:|---:|---:|",
        *(
            f"| {role} | {_f(s[f'{role}_ndcg_at_k'])} | {_f(s[f'{role}_hit_rate_at_k'], '{:.3f}')} | "
            f"{s[f'{role}_ndcg_at_k_nights']} |"
            for role in ROLES
        ),
        "",
        f"- **Mean ratio of model NDCG@{k} over popularity NDCG@{k}: {_f(s['mean_ratio'], '{:.3f}')}** = mean over "
        f"nights of the per-night ratio, over the {s['ratio_nights']} nights where popularity's NDCG@{k} is "
        f"defined and above 0. Ratio of means over the same nights: {_f(s['ratio_of_means'], '{:.3f}')}.",
        f"- Model NDCG@{k} above popularity's on {s['nights_model_above_popularity']} nights, below on "
        f"{s['nights_model_below_popularity']}; popularity's NDCG@{k} is 0 on {s['nights_popularity_zero']} nights "
        f"(left out of the mean ratio). Users scored per night: mean {_f(s['mean_users_scored'], '{:.1f}')} "
        f"(of {_f(s['mean_window_users'], '{:.1f}')} who rated in the window).",
        f"- Stale over fresh (ratio of mean NDCG@{k}, nights with both): {_f(s['stale_ratio_of_means'], '{:.3f}')}.",
        f"- Seconds per night: mean {_f(s['mean_total_s'], '{:.1f}')} (median {_f(s['median_total_s'], '{:.1f}')}),"
        f" of which fit mean {_f(s['mean_train_s'], '{:.1f}')}.",
        f"- Trend: a weight above 0 on {s['trend_nights']} of {s['nights']} nights"
        + (f"; its ranker refit took {_f(s['mean_trend_fit_s'], '{:.1f}')} s a night" if s["trend_nights"] else "")
        + ".",
        "",
    ]
    return lines


def write_outputs(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(report))
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")


# --- command line ------------------------------------------------------------------------------


def parse_weeks(value: str | None, names: list[str]) -> dict[str, int]:
    """``N`` for every release, or ``name=N,...`` over the defaults (20 for ml-100k, 52 otherwise)."""
    weeks = {name: DEFAULT_WEEKS.get(name, 52) for name in names}
    if not value:
        return weeks
    if "=" not in value:
        return {name: int(value) for name in names}
    for part in value.split(","):
        name, _, n = part.partition("=")
        weeks[name.strip()] = int(n)
    return weeks


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from recsys_core.data.datasets import DATASETS
    from recsys_core.model_names import DEFAULT_MODEL, MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small", help="comma-separated releases")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with the release zips")
    parser.add_argument("--weeks", default=None, help="N for every release, or name=N,... (default ml-100k=20, 52)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"registry name (default {DEFAULT_MODEL})")
    parser.add_argument("--top-n", type=int, default=10, help="list length and k of the metrics")
    parser.add_argument("--seed", type=int, default=42, help="training seed (the nightly default is 42)")
    parser.add_argument("--limit-nights", type=int, default=None, help="replay only each release's last K nights")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help="markdown file; the JSON goes beside it")
    parser.add_argument(
        "--no-trend", dest="trend", action="store_false", help="publish the ranking alone (the flow's --no-trend)"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown datasets {unknown}; known: {', '.join(DATASETS)}")
    if args.model not in MODEL_NAMES:
        parser.error(f"unknown model {args.model!r}; known: {', '.join(MODEL_NAMES)}")
    if args.top_n < 1:
        parser.error("--top-n must be at least 1")
    if args.limit_nights is not None and args.limit_nights < 1:
        parser.error("--limit-nights must be at least 1")
    try:
        weeks = parse_weeks(args.weeks, names)
    except ValueError:
        parser.error(f"--weeks {args.weeks!r}: give N or name=N,...")
    if any(w < 1 for w in weeks.values()):
        parser.error("--weeks must be at least 1")

    report: dict[str, Any] = {
        "machine": describe_machine(),
        "python": platform.python_version(),
        "command": f"python -m benchmarks.replay {shlex.join(sys.argv[1:] if argv is None else argv)}".strip(),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": args.model,
        "default_model": DEFAULT_MODEL,
        "top_n": args.top_n,
        "seed": args.seed,
        "weeks": weeks,
        "limit_nights": args.limit_nights,
        "trend": args.trend,
        "load_start": _load(),
        "load_end": None,
        "datasets": [],
        "skipped": {},
        "partial": True,
        "run_s": None,
    }
    started = time.perf_counter()
    for name in names:
        path = args.data_dir / f"{name}.zip"
        if not path.is_file():
            reason = f"{path} not found (pass --data-dir)"
            print(f"{name}: skipped, {reason}", flush=True)
            report["skipped"][name] = reason
            continue

        def on_row(row: dict[str, Any]) -> None:
            print(f"{row['dataset']} {format_row(row)}", flush=True)
            report["load_end"] = _load()
            report["run_s"] = round(time.perf_counter() - started, 1)
            write_outputs(report, args.out)

        replay_dataset(
            name,
            path,
            weeks=weeks[name],
            model=args.model,
            top_n=args.top_n,
            seed=args.seed,
            limit_nights=args.limit_nights,
            sink=report["datasets"],
            on_row=on_row,
            trend=args.trend,
        )
    report["partial"] = False
    report["run_s"] = round(time.perf_counter() - started, 1)
    report["load_end"] = _load()
    report["generated"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_outputs(report, args.out)
    print(render_markdown(report))
    return report


if __name__ == "__main__":
    main()
