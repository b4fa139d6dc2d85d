"""The night's stages: cut the release at the cutoff, then score the previous night's lists."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.data.datasets import DatasetSpec
from recsys_core.data.ratings_log.span import describe_log_span
from recsys_core.data.readers import Release
from recsys_core.data.sources import is_log
from recsys_core.nights.calendar import cutoff_seconds
from recsys_core.nights.cutoff import NightData, count_new_since, cut_release, require_enough_data
from recsys_core.nights.online import ONLINE_METRIC_KEYS, online_metrics
from recsys_core.publishing.nights import latest_night_before
from recsys_core.publishing.table import read_table, require_table_files
from tasks.artifacts import fmt, logger, publish_markdown, publish_table
from tasks.stage import stage


@stage("cut-night")
def cut_to_night(release: Release, as_of: date, spec: DatasetSpec, source: Path | None = None) -> NightData:
    """Only ratings before ``as_of`` 00:00 UTC go on; too early a night stops here, in one paragraph.

    A log (read only through the cutoff) gives its whole span from its partitions, for the messages."""
    span = describe_log_span(Path(str(source))) if is_log(spec) and source is not None else None
    night = cut_release(release, as_of, span)
    dataset = spec.name
    require_enough_data(night, dataset)
    summary = night.summary()
    left_out = f"{night.dropped_after_cutoff:,} after it left out"
    if span is not None:  # a log: what comes after the cutoff was never read
        left_out = "days from the cutoff on not read"
    logger().info(
        "night %s: %s ratings before the cutoff, %s (the source spans %s to %s)",
        as_of,
        f"{summary['ratings']:,}",
        left_out,
        summary["release_first_rating"],
        summary["release_last_rating"],
    )
    if night.nothing_new:
        logger().warning(
            "night %s is after the last rating in %s (%s): nothing is new since then; tonight's table is built "
            "from every rating the source holds",
            as_of,
            dataset,
            night.last_rating,
        )
    return night


@stage("score-previous-night")
def score_previous_night(data_dir: Path, as_of: date, dataset: str, ratings: pd.DataFrame) -> dict[str, Any]:
    """The previous published night's lists against the ratings that arrived since its cutoff.

    ``ratings`` are the night's raw ratings (after the data gate, before averaging duplicates).
    Returns ``{"online_metrics": ..., "new_since_previous": ...}`` (both None on a first night).
    A previous table that cannot be read is a warning: tonight's run does not depend on it.
    """
    previous = latest_night_before(Path(data_dir), as_of)
    if previous is not None and previous.get("dataset") != dataset:
        previous = None
    if previous is None:
        logger().info("no earlier night of %s published: no online metrics tonight", dataset)
        return {"online_metrics": None, "new_since_previous": None}
    start, end = int(previous["cutoff_ts"]), cutoff_seconds(as_of)
    new = count_new_since(ratings, start)
    try:
        lists = read_table(require_table_files(previous, Path(data_dir)))
    except Exception as exc:  # noqa: BLE001 - a pruned or broken old table must not stop tonight
        logger().warning("cannot read the table of night %s (%s): no online metrics tonight", previous["as_of"], exc)
        return {"online_metrics": None, "new_since_previous": {"previous_as_of": previous["as_of"], **new}}
    k = int(previous.get("top_n") or lists["rank"].max())
    scored = online_metrics(lists, ratings, window_start=start, window_end=end, k=k)
    result = {
        "previous_as_of": previous["as_of"],
        "previous_run_id": previous.get("run_id"),
        "window_start": pd.Timestamp(start, unit="s", tz="UTC").isoformat(),
        "window_end": pd.Timestamp(end, unit="s", tz="UTC").isoformat(),
        **scored,
    }
    publish_online_metrics(result)
    return {"online_metrics": result, "new_since_previous": {"previous_as_of": previous["as_of"], **new}}


def publish_online_metrics(result: dict[str, Any]) -> None:
    """Artifact: the previous night's lists and popularity, side by side."""
    popular = result["baselines"]["popularity"]
    rows = [
        {"lists": f"published night {result['previous_as_of']}", **{m: fmt(result.get(m)) for m in ONLINE_METRIC_KEYS}},
        {"lists": "popularity at that night", **{m: fmt(popular.get(m)) for m in ONLINE_METRIC_KEYS}},
    ]
    publish_table(
        "online-metrics",
        rows,
        f"Night {result['previous_as_of']}'s top-{result['k']} lists against the {result['window_ratings']:,} ratings "
        f"of {result['users']:,} users between {result['window_start'][:10]} and {result['window_end'][:10]}",
    )
    if not result["users"]:
        publish_markdown(
            "online-metrics-note",
            f"No user with a list from night {result['previous_as_of']} rated anything since: nothing to score.",
            "Why the online metrics are empty",
        )
    logger().info(
        "online metrics of night %s (%s users): NDCG@%s %s, hit rate %s; popularity %s / %s",
        result["previous_as_of"],
        result["users"],
        result["k"],
        fmt(result.get("ndcg_at_k")),
        fmt(result.get("hit_rate_at_k")),
        fmt(popular.get("ndcg_at_k")),
        fmt(popular.get("hit_rate_at_k")),
    )
