"""The nightly flow: download -> load -> validate -> merge/average -> encode -> split ->
train -> evaluate -> quality gate -> (refit on all data) -> score -> publish -> retention ->
report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from tasks.clean import merge_and_average
from tasks.download import download_archive
from tasks.encode import encode_ids
from tasks.evaluate import check_quality_gate, evaluate_run
from tasks.load import load_release
from tasks.publish import publish_recommendations
from tasks.report import write_run_report
from tasks.retention import prune_published_runs
from tasks.run import open_run, read_champion
from tasks.score import prepare_scoring, score_in_shards, score_task_runner, threads_per_shard
from tasks.split import split_ratings
from tasks.train import DEFAULT_MODEL, decide_refit, train_model
from tasks.validate import validate_release

FLOW_NAME = "nightly-recommendations"


@flow(name=FLOW_NAME, log_prints=True)
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
    refit_max_ratings: int | None = 25_000_000,
    quality_gate: bool = True,
    gate_margin: float = 0.05,
    retention: int = 14,
    n_shards: int = 1,
    dask_address: str | None = None,
) -> dict[str, Any]:
    """One nightly run; returns the manifest of the published table."""
    root = Path(data_dir)
    run = open_run(root)
    archive = download_archive(dataset, source, run.cache_dir, offline=offline)
    release = load_release(archive.path, dataset)
    gated = validate_release(release, dataset, run.folder, reject_threshold)
    ratings = merge_and_average(gated.ratings, gated.movies)
    vocab = encode_ids(ratings, run.folder)
    parts = split_ratings(ratings, release, split, seed)
    refit = decide_refit(len(ratings), refit_full, refit_max_ratings)
    candidate = train_model(
        parts.train, vocab, gated.movies, model, dataset, seed, None if refit else run.folder / "model", run.folder
    )
    champion = read_champion(root, dataset, split)
    evaluation = evaluate_run(candidate, parts, vocab, dataset, k, run.folder, champion)
    check_quality_gate(evaluation, champion, gate_margin, enabled=quality_gate)
    final = (
        train_model.with_options(name="refit-all")(
            ratings, vocab, gated.movies, model, dataset, seed, run.folder / "model", run.folder
        )
        if refit
        else candidate
    )
    scorer, seen = prepare_scoring(final, ratings, vocab)
    tops = score_in_shards.with_options(task_runner=score_task_runner(dask_address, n_shards))(
        scorer, seen, top_n, n_shards, memory_budget_mb, threads_per_shard(n_shards, dask_address)
    )
    manifest = publish_recommendations(
        tops, vocab, gated.movies, ratings, final, run, dataset, top_n, evaluation, archive
    )
    prune_published_runs(root, retention)
    write_run_report(run, dataset, release, gated, ratings, parts, final, evaluation, manifest)
    return manifest
