"""The backfill flow: the nightly flow for each night of a range, oldest first, as sub-flows.

Resumable: a night already published with the same table configuration and the same input is
skipped. The first failed night stops the backfill; every night published before it stays.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from prefect import flow

from flows.nightly import nightly_recommendations
from recsys_core.data.sources import night_fingerprint, resolve_spec
from recsys_core.errors import RecsysError
from recsys_core.nights.calendar import nights_between, parse_every
from tasks.backfill import BackfillProgress, already_published, publish_backfill_summary
from tasks.download import download_archive
from tasks.run import check_config
from tasks.termination import arm_termination_record, raise_if_terminated

FLOW_NAME = "backfill-recommendations"


class BackfillError(RecsysError):
    """A night of the backfill failed; the nights before it stay published."""


@flow(name=FLOW_NAME, log_prints=True)
def backfill_recommendations(
    start: date,
    end: date,
    every: str = "1d",
    parameters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run nights ``start``..``end`` every ``every`` (``1d``, ``7d``) with the nightly ``parameters``.

    Returns one row per night: ``night``, ``status`` (published, skipped), ``run_id``.
    """
    arm_termination_record()  # its nights reuse the bridge; a signal between them is recorded too
    params = dict(parameters or {})  # the nightly flow's parameter names
    params.pop("as_of", None)
    values = {**params, "as_of": start}
    if "n_shards" in values:
        values["shards"] = values.pop("n_shards")
    cfg = check_config(values)
    spec = resolve_spec(cfg.dataset, cfg.source)
    nights = nights_between(start, end, parse_every(every))
    archive = download_archive(spec, cfg.source, cfg.cache_dir, offline=cfg.offline, as_of=start)
    progress = BackfillProgress(nights)
    progress.start()
    if len(nights) > cfg.retention:
        print(
            f"backfilling {len(nights)} nights with retention {cfg.retention}: all are kept during the backfill, but "
            f"the next nightly run keeps only the newest {cfg.retention}; pass --retention {len(nights)} (or more) "
            "to keep them"
        )
    # while backfilling, retention never prunes a night this backfill published (older nights may be
    # older than every night already on disk)
    params["retention"] = cfg.retention + len(nights)
    for night in nights:
        raise_if_terminated()  # a SIGTERM lost in the last night's final stage stops the backfill here
        began = time.perf_counter()
        done = already_published(cfg.data_dir, night, cfg, night_fingerprint(spec, archive, night))
        if done is not None:
            print(f"night {night}: already published by run {done['run_id']} with this configuration and data; skipped")
            progress.record(night, "skipped", done, time.perf_counter() - began)
            continue
        state = nightly_recommendations(**{**params, "as_of": night}, return_state=True)
        if not state.is_completed():
            published = [r["night"] for r in progress.rows]
            failure = (
                f"night {night} failed ({state.message or state.name}). The nights before it stay published"
                + (f" ({published[0]} to {published[-1]})" if published else "")
                + "; fix the cause and run the same backfill again: published nights are skipped."
            )
            progress.record(night, "failed", None, time.perf_counter() - began)
            publish_backfill_summary(progress, failure)
            raise BackfillError(failure)
        progress.record(night, "published", state.result(), time.perf_counter() - began)
    publish_backfill_summary(progress)
    return progress.rows
