"""The nightly flow: check config -> download -> load -> cut at the night -> validate -> merge/average ->
score the previous night's lists -> encode -> split -> choose scale -> train -> evaluate -> re-score the
champion -> quality gate -> (refit on all data) -> choose the trend -> score -> (trend) -> (explore) ->
publish -> retention -> report. Only wiring: each stage is a task in `tasks/` over `recsys_core.pipeline`."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.transactions import transaction

from flows.scoring import score_in_shards, score_task_runner
from recsys_core import pipeline
from recsys_core.data.sources import resolve_spec
from recsys_core.serving.topn import threads_per_shard
from tasks.clean import merge_and_average
from tasks.download import download_archive
from tasks.encode import encode_ids
from tasks.evaluate import check_quality_gate, evaluate_run, rescore_champion
from tasks.failure import report_failure
from tasks.load import load_release
from tasks.night import cut_to_night, score_previous_night
from tasks.publish import check_staged_table, night_fields, publish_recommendations, stage_recommendations
from tasks.report import summarise_run_inputs, write_run_report
from tasks.retention import prune_published_runs
from tasks.reuse import find_reusable_model, fingerprint_input, reuse_published_model
from tasks.run import check_config, open_run, read_champions
from tasks.score import (
    choose_trend,
    explore_lists,
    prepare_scoring,
    trend_lists,
)
from tasks.split import split_ratings
from tasks.termination import arm_termination_record
from tasks.train import DEFAULT_MODEL, choose_scale_profile, refit_model, train_model
from tasks.validate import validate_release

FLOW_NAME = "nightly-recommendations"


@flow(
    name=FLOW_NAME,
    log_prints=True,
    on_failure=[report_failure],
    on_crashed=[report_failure],
    on_cancellation=[report_failure],
)
def nightly_recommendations(
    dataset: str = "ml-100k",
    source: str | None = None,
    data_dir: str = "data",
    model: str = DEFAULT_MODEL,
    top_n: int = 10,
    split: str = "stratified",
    seed: int = 42,
    k: int = 10,
    reject_threshold: float = 0.01,
    memory_budget_mb: int = 2048,
    offline: bool = False,
    refit_full: bool = True,
    refit_max_ratings: int | None = None,
    refit_mode: str = "warm",
    quality_gate: bool = True,
    gate_margin: float = 0.05,
    retention: int = 14,
    n_shards: int = 1,
    dask_address: str | None = None,
    scale: str = "auto",
    as_of: date | None = None,
    retrain: bool = False,
    explore_slots: int | None = None,
    explore_depth: int | None = None,
    explore_coverage: float = 0.15,
    trend: bool = True,
) -> dict[str, Any]:
    """One night's run; returns the manifest of the published table.

    The parameters become one validated ``NightlyConfig`` first (relative paths resolve against
    the working directory: the clone, for a deployment), so a bad value fails in seconds.
    ``as_of`` is the night (UTC date; default: the flow run's scheduled date): only ratings before
    its 00:00 UTC are used, and the table goes to ``dt=<as_of>/``. When tonight's cleaned ratings,
    movies and settings equal a published night's, its model is reused instead of trained again
    (``retrain=True`` trains anyway).
    """
    params = dict(locals())
    params["shards"] = params.pop("n_shards")
    arm_termination_record()  # a SIGTERM that library code swallows still stops the night
    cfg = check_config(params)
    spec = resolve_spec(cfg.dataset, cfg.source)  # a release, or a ratings log's dataset.json
    run = open_run(cfg.data_dir, cfg.as_of)
    archive = download_archive(spec, cfg.source, cfg.cache_dir, offline=cfg.offline, as_of=cfg.as_of)
    night = cut_to_night(load_release(archive.path, spec, cfg.as_of), cfg.as_of, spec, archive.path)
    release = night.release
    gated = validate_release(release, spec, run.folder, cfg.reject_threshold, top_n=cfg.top_n)
    movies = gated.movies
    ratings = merge_and_average(gated.ratings, movies)
    previous = score_previous_night(cfg.data_dir, cfg.as_of, spec.name, gated.ratings)
    vocab = encode_ids(ratings, run.folder)
    parts = split_ratings(ratings, release, cfg.split, cfg.seed)
    profile = choose_scale_profile(ratings, vocab, cfg)
    fingerprint = fingerprint_input(ratings, movies, cfg, spec)
    inputs = summarise_run_inputs(release, gated, ratings, parts)
    # From here on the cleaned ratings are the data: the raw and gated frames (two more copies
    # of every rating, 0.67 GB each at 25M) are let go before training.
    night = night.without_ratings()
    del release, gated
    reusable = find_reusable_model(cfg.data_dir, spec.name, fingerprint, enabled=not cfg.retrain)
    reused = reuse_published_model(reusable, run.folder, cfg.quality_gate)
    refit = None
    if reused is not None:  # same input, settings and code as a published night: its model, no training
        final, evaluation, gate = reused
    else:
        reusable = None
        candidate = train_model(
            parts.train,
            vocab,
            movies,
            cfg.model,
            spec,
            cfg.seed,
            profile,
            None if profile.refit else run.folder / "model",
            run.folder,
        )
        evaluation = evaluate_run(candidate, parts, vocab, spec, cfg.k, run.folder, cfg.explore, cfg.top_n)
        champions = read_champions(cfg.data_dir, spec.name, cfg.split, cfg.as_of)
        comparison = rescore_champion(candidate, ratings, parts, vocab, champions, cfg.k, enabled=cfg.quality_gate)
        gate = check_quality_gate(evaluation, comparison, cfg.gate_margin, enabled=cfg.quality_gate)
        del parts  # the split's frames (one more copy of every rating) are not needed past the gate
        refit = (
            refit_model(
                candidate,
                ratings,
                vocab,
                movies,
                spec,
                cfg.seed,
                profile,
                cfg.refit_mode,
                run.folder / "model",
                run.folder,
            )
            if profile.refit
            else None
        )
        final = (refit or candidate).model
    trending = choose_trend(final, ratings, vocab, movies, spec, profile, cfg, night.cutoff, run.folder)
    scorer, seen = prepare_scoring(final, ratings, vocab)
    tops = score_in_shards.with_options(task_runner=score_task_runner(cfg.dask_address, cfg.shards))(
        scorer,
        seen,
        pipeline.scoring_depth(cfg, vocab.n_movies, trending),
        cfg.shards,
        cfg.memory_budget_mb,
        threads_per_shard(cfg.shards, cfg.dask_address),
    )
    if trending.active:
        tops = trend_lists(tops, trending, ratings, vocab, seen, night.cutoff, cfg)
    if cfg.explore.active:
        tops = explore_lists(tops, cfg.top_n, cfg.explore, vocab.n_movies)
    with transaction():  # a failed check or commit rolls the staged table back
        staged = stage_recommendations(tops, vocab, movies, ratings, final, run, cfg.top_n)
        checks = check_staged_table(staged, ratings, vocab, cfg.top_n)
        manifest = publish_recommendations(
            staged,
            checks,
            vocab,
            movies,
            ratings,
            final,
            run,
            spec.name,
            cfg.top_n,
            evaluation,
            archive,
            profile,
            night_fields(night, previous, gate, cfg, archive, fingerprint, reusable, refit, trending),
        )
    prune_published_runs(cfg.data_dir, cfg.retention)
    write_run_report(run, spec.name, inputs, movies, final, evaluation, manifest)
    return manifest
