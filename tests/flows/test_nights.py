"""Nights through Prefect: cutoffs, consecutive nights with online metrics, out-of-order and re-run nights,
and the backfill flow (resume, stop on the first failed night)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from flows.backfill import BackfillError, backfill_recommendations
from flows.nightly import nightly_recommendations
from recsys_core.nights.calendar import cutoff_seconds
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.publishing.nights import list_nights, read_night
from recsys_core.publishing.table import read_latest, read_manifest, read_table
from tests.builders import T0_TREND, WEEK, build_ml100k_zip, synth_ratings, trending_ratings

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_harness")]

FAST = {"split": "random", "quality_gate": False, "refit_full": False, "model": "bias", "top_n": 5}
NIGHT_1 = date(1998, 1, 20)  # the synthetic ratings run from 1997-11-21 to 1998-03-15
NIGHT_2 = NIGHT_1 + timedelta(days=7)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    ratings = synth_ratings(n_users=40, per_user=14)
    return build_ml100k_zip(tmp_path / "ml-100k.zip", ratings, folds=False), ratings


def test_two_consecutive_nights_use_only_their_past_and_score_yesterdays_lists(archive, tmp_path):
    zip_path, ratings = archive
    data_dir = tmp_path / "data"
    first = nightly_recommendations(source=str(zip_path), data_dir=str(data_dir), as_of=NIGHT_1, **FAST)
    cut_1 = cutoff_seconds(NIGHT_1)
    before_1 = ratings[ratings.timestamp < cut_1]
    assert first["as_of"] == "1998-01-20" and first["cutoff_ts"] == cut_1
    assert Path(first["path"]).parent.name == "dt=1998-01-20"
    table_1 = read_table(Path(first["path"]))
    # users with no rating before the cutoff are not in the night's table; the vocabulary saw only the past
    assert set(table_1.user_id) == set(before_1.user_id)
    vocab = IdVocabulary.load(Path(first["run_folder"]) / "vocabulary.json")
    assert set(vocab.user_ids) == set(before_1.user_id) and set(vocab.movie_ids) == set(before_1.movie_id)
    # the seen mask is the past only: a movie the user rates after the cutoff may be recommended
    seen = set(zip(before_1.user_id, before_1.movie_id, strict=True))
    assert not any(pair in seen for pair in zip(table_1.user_id, table_1.movie_id, strict=True))
    assert first["online_metrics"] is None and first["new_since_previous"] is None

    second = nightly_recommendations(source=str(zip_path), data_dir=str(data_dir), as_of=NIGHT_2, **FAST)
    cut_2 = cutoff_seconds(NIGHT_2)
    window = ratings[(ratings.timestamp >= cut_1) & (ratings.timestamp < cut_2)]
    new = second["new_since_previous"]
    assert new["previous_as_of"] == "1998-01-20" and new["ratings"] == len(window)
    assert new["users"] == len(set(window.user_id) - set(before_1.user_id))
    online = second["online_metrics"]
    assert online["previous_as_of"] == "1998-01-20" and online["k"] == 5
    assert online["window_ratings"] == len(window)
    assert online["users"] == len(set(window.user_id) & set(table_1.user_id))
    hits = window.merge(table_1[["user_id", "movie_id"]], on=["user_id", "movie_id"])
    users_with_hit = hits.user_id.nunique()
    assert online["hit_rate_at_k"] == pytest.approx(users_with_hit / online["users"])
    assert set(online["baselines"]["popularity"]) >= {"ndcg_at_k", "hit_rate_at_k", "users"}
    assert read_manifest(data_dir)["run_id"] == second["run_id"]


def test_older_nights_never_displace_the_newest_and_a_rerun_moves_its_night(archive, tmp_path):
    zip_path, _ = archive
    data_dir = tmp_path / "data"
    newest = nightly_recommendations(source=str(zip_path), data_dir=str(data_dir), as_of=NIGHT_2, **FAST)
    older = nightly_recommendations(source=str(zip_path), data_dir=str(data_dir), as_of=NIGHT_1, **FAST)
    assert not older["latest"] and read_manifest(data_dir)["run_id"] == newest["run_id"]
    assert read_night(data_dir, NIGHT_1)["run_id"] == older["run_id"]
    rerun = nightly_recommendations(source=str(zip_path), data_dir=str(data_dir), as_of=NIGHT_2, **FAST)
    manifest, table = read_latest(data_dir)
    assert manifest["run_id"] == rerun["run_id"] != newest["run_id"] and len(table) == rerun["rows"]
    assert [m["as_of"] for m in list_nights(data_dir)] == ["1998-01-20", "1998-01-27"]
    # the re-run of NIGHT_2 scored NIGHT_1's lists, the night before it (not the run it replaced)
    assert rerun["online_metrics"]["previous_as_of"] == "1998-01-20"


def test_a_night_too_early_names_the_date_and_the_release_span(archive, tmp_path):
    zip_path, _ = archive
    with pytest.raises(Exception, match=r"--as-of 1997-11-2\d is too early.*1997-11-\d\d to 1998-03-\d\d"):
        nightly_recommendations(source=str(zip_path), data_dir=str(tmp_path / "d"), as_of=date(1997, 11, 22), **FAST)
    assert read_manifest(tmp_path / "d") is None


def test_backfill_resumes_and_stops_at_the_first_failed_night(archive, tmp_path):
    zip_path, _ = archive
    data_dir = tmp_path / "data"
    params = {"source": str(zip_path), "data_dir": str(data_dir), **FAST}
    rows = backfill_recommendations(NIGHT_1, NIGHT_2, every="7d", parameters=params)
    assert [(r["night"], r["status"]) for r in rows] == [("1998-01-20", "published"), ("1998-01-27", "published")]
    again = backfill_recommendations(NIGHT_1, NIGHT_2 + timedelta(days=7), every="7d", parameters=params)
    assert [r["status"] for r in again] == ["skipped", "skipped", "published"]
    assert read_manifest(data_dir)["as_of"] == "1998-02-03"
    # another configuration is another table: nothing is skipped
    changed = backfill_recommendations(NIGHT_1, NIGHT_1, parameters={**params, "top_n": 4})
    assert [r["status"] for r in changed] == ["published"]
    with pytest.raises(BackfillError, match=r"night 1997-11-22 failed.*run the same backfill again"):
        backfill_recommendations(date(1997, 11, 22), NIGHT_1, every="7d", parameters=params)
    assert read_manifest(data_dir)["as_of"] == "1998-02-03"


def test_a_ratings_log_runs_night_by_night_and_a_broken_day_file_loses_nothing(archive, tmp_path):
    from recsys_core.data.datasets import get_dataset
    from recsys_core.data.ratings_log import export_log
    from recsys_core.data.readers import read_release

    zip_path, ratings = archive
    log_dir = tmp_path / "log"
    export_log(read_release(zip_path, "ml-100k"), get_dataset("ml-100k"), log_dir)
    data_dir = tmp_path / "data"
    params = {**FAST, "dataset": "log", "source": str(log_dir), "data_dir": str(data_dir)}
    first = nightly_recommendations(as_of=NIGHT_1, **params)
    assert (
        first["dataset"] == "ml-100k"
        and first["users"] == ratings[ratings.timestamp < cutoff_seconds(NIGHT_1)].user_id.nunique()
    )
    # a day after NIGHT_2 is unreadable: NIGHT_2 never opens it
    late_day = sorted((log_dir / "ratings").glob("dt=1998-03-*"))[0]
    next(late_day.glob("*.parquet")).write_bytes(b"not parquet")
    second = nightly_recommendations(as_of=NIGHT_2, **params)
    assert second["online_metrics"]["previous_as_of"] == "1998-01-20"
    # a broken day inside the next night's window stops that night with the file named; nothing published is lost
    window_day = sorted((log_dir / "ratings").glob("dt=1998-01-2[7-9]"))[0]
    broken = next(window_day.glob("*.parquet"))
    broken.write_bytes(b"not parquet")
    with pytest.raises(Exception, match=broken.name):
        nightly_recommendations(as_of=NIGHT_2 + timedelta(days=7), **params)
    assert read_manifest(data_dir)["run_id"] == second["run_id"]


def test_cli_backfill_then_runs_lists_the_nights_with_online_metrics(archive, tmp_path):
    from typer.testing import CliRunner

    from recsys_cli.main import app

    zip_path, _ = archive
    data_dir = tmp_path / "data"
    common = ["--source", str(zip_path), "--data-dir", str(data_dir), "--model", "bias", "--split", "random"]
    result = CliRunner().invoke(
        app, ["backfill", "--from", "1998-01-20", "--to", "1998-02-03", "--every", "7d", "--no-quality-gate", *common]
    )
    assert result.exit_code == 0, result.output
    assert "Backfill done: 3 nights published, 0 already published" in result.output
    listing = CliRunner().invoke(app, ["runs", "--data-dir", str(data_dir)]).output.splitlines()
    assert [line.lstrip("* ").split()[0] for line in listing[1:]] == ["1998-02-03", "1998-01-27", "1998-01-20"]
    assert listing[1].startswith("*") and listing[3].split()[-1] == "-"  # the first night has no earlier lists
    assert listing[1].split()[-1] != "-"
    again = CliRunner().invoke(app, ["run", "--as-of", "1998-02-03", "--no-quality-gate", *common])
    assert again.exit_code == 0, again.output
    assert "reused from run" in again.output and "--retrain trains anyway" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--as-of", "20-01-1998"], "--as-of: is not a date"),
        (["backfill", "--from", "1998-02-01", "--to", "1998-01-01"], "--from 1998-02-01 is after --to 1998-01-01"),
        (["backfill", "--from", "1998-01-01", "--to", "1998-02-01", "--every", "1w"], "--every '1w'"),
        (["backfill", "--from", "1998-01-01", "--to", "soon"], "--to 'soon' is not a date"),
        (["backfill", "--from", "1998-13-01", "--to", "1998-12-01"], "--from '1998-13-01' is not a date"),
        (["backfill", "--from", "1998-01-01", "--to", "2999-01-01"], "--to 2999-01-01 is in the future"),
        (["run", "--as-of", "2999-01-01"], "--as-of: 2999-01-01 is in the future"),
    ],
)
def test_cli_bad_nights_exit_2_before_anything_runs(args, message, tmp_path):
    from typer.testing import CliRunner

    from recsys_cli.main import app

    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "d").exists()


def test_no_rating_at_or_after_the_cutoff_reaches_training_evaluation_or_the_seen_mask(archive, tmp_path, monkeypatch):
    """On a tiny log: spies on the pipeline record the newest timestamp each stage was given."""
    from recsys_core import pipeline
    from recsys_core.data.datasets import get_dataset
    from recsys_core.data.ratings_log import export_log
    from recsys_core.data.readers import read_release
    from tasks import score

    zip_path, ratings = archive
    log_dir = tmp_path / "log"
    export_log(read_release(zip_path, "ml-100k"), get_dataset("ml-100k"), log_dir)
    newest: dict[str, int] = {}
    real_train, real_evaluate, real_prepare = pipeline.train, pipeline.evaluate, score.prepare_scoring.fn

    def train(name, frame, *args, **kwargs):
        newest["train"] = max(newest.get("train", 0), int(frame.timestamp.max()))
        return real_train(name, frame, *args, **kwargs)

    def evaluate(trained, split, *args, **kwargs):
        newest["evaluate"] = int(max(split.train.timestamp.max(), split.test.timestamp.max()))
        return real_evaluate(trained, split, *args, **kwargs)

    def prepare(model, frame, vocab):
        newest["seen mask"] = int(frame.timestamp.max())
        return real_prepare(model, frame, vocab)

    monkeypatch.setattr(pipeline, "train", train)
    monkeypatch.setattr(pipeline, "evaluate", evaluate)
    monkeypatch.setattr(score.prepare_scoring, "fn", prepare)
    cut = cutoff_seconds(NIGHT_1)
    assert ratings.timestamp.max() >= cut  # the log holds later ratings
    params = {**FAST, "refit_full": True, "dataset": "log", "source": str(log_dir), "data_dir": str(tmp_path / "d")}
    nightly_recommendations(as_of=NIGHT_1, **params)
    assert set(newest) == {"train", "evaluate", "seen mask"}
    assert all(ts < cut for ts in newest.values()), newest
    assert newest["train"] == ratings[ratings.timestamp < cut].timestamp.max()


def test_predefined_folds_are_cut_at_the_night_too(tmp_path, monkeypatch):
    """u1's train and test parts, and so the baselines evaluated on them, hold only the past."""
    from recsys_core import pipeline

    ratings = synth_ratings(n_users=40, per_user=14)
    zip_path = build_ml100k_zip(tmp_path / "ml-100k.zip", ratings, folds=True)
    seen: dict[str, int] = {}
    real_evaluate = pipeline.evaluate

    def evaluate(trained, split, *args, **kwargs):
        seen["split"] = split.name
        seen["newest"] = int(max(split.train.timestamp.max(), split.test.timestamp.max()))
        seen["pairs"] = len(split.train) + len(split.test)
        return real_evaluate(trained, split, *args, **kwargs)

    monkeypatch.setattr(pipeline, "evaluate", evaluate)
    params = {**FAST, "split": "u1", "source": str(zip_path), "data_dir": str(tmp_path / "d")}
    nightly_recommendations(as_of=NIGHT_1, **params)
    cut = cutoff_seconds(NIGHT_1)
    assert seen["split"] == "u1" and seen["newest"] < cut
    assert seen["pairs"] == (ratings.timestamp < cut).sum()


def test_unchanged_input_reuses_the_published_model_and_still_publishes(archive, tmp_path, monkeypatch):
    """Two nights after the last rating see the same ratings: the second one trains nothing."""
    from recsys_core import pipeline

    zip_path, _ = archive
    params = {**FAST, "source": str(zip_path), "data_dir": str(tmp_path / "d")}
    calls: list[int] = []
    real_train = pipeline.train
    monkeypatch.setattr(pipeline, "train", lambda *a, **kw: calls.append(1) or real_train(*a, **kw))
    first = nightly_recommendations(as_of=date(1998, 4, 1), **params)
    trained = len(calls)
    assert trained >= 1 and first["model_reused_from"] is None
    second = nightly_recommendations(as_of=date(1998, 4, 2), **params)
    assert len(calls) == trained  # no training
    assert second["model_reused_from"] == first["run_id"]
    assert second["training_fingerprint"] == first["training_fingerprint"]
    assert second["metrics"] == first["metrics"] and second["as_of"] == "1998-04-02"
    assert (Path(second["run_folder"]) / "model" / "model.json").is_file()  # copied: retention may drop the source
    cols = ["user_id", "rank", "movie_id"]
    one, two = read_table(Path(first["path"]))[cols], read_table(Path(second["path"]))[cols]
    pd.testing.assert_frame_equal(
        one.sort_values(cols).reset_index(drop=True), two.sort_values(cols).reset_index(drop=True)
    )
    assert read_manifest(tmp_path / "d")["run_id"] == second["run_id"]
    third = nightly_recommendations(as_of=date(1998, 4, 3), retrain=True, **params)
    assert len(calls) > trained and third["model_reused_from"] is None
    assert "reused_from" not in third["gate"]
    assert second["gate"]["passed"] and second["gate"]["champion"] is None
    # a model that can no longer be loaded is not reused: the night trains instead of failing
    before = len(calls)
    (Path(third["run_folder"]) / "model" / "model.json").write_text("{broken")
    fourth = nightly_recommendations(as_of=date(1998, 4, 4), **params)
    assert fourth["model_reused_from"] is None and len(calls) > before


def test_a_live_night_leans_its_lists_towards_what_trends_and_says_so(tmp_path, caplog):
    """A hot movie everyone rates this fortnight: the night chooses a trend weight on the week before
    it, the published lists of users who have not rated the movie start with it, and --no-trend
    publishes the ranking alone."""
    ratings = trending_ratings()
    NIGHT = T0_TREND + 6 * WEEK  # noqa: N806 - the night's cutoff, as in tests/core/test_pipeline_trend.py
    zip_path = build_ml100k_zip(tmp_path / "ml-100k.zip", ratings, n_movies=18, folds=False)
    night = datetime.fromtimestamp(NIGHT, UTC).date()
    params = {**FAST, "model": "ease", "source": str(zip_path), "as_of": night}
    on = nightly_recommendations(data_dir=str(tmp_path / "on"), **params)
    trend = on["trend"]
    assert trend["active"] and trend["window_end"] == NIGHT and trend["ndcg_trend"] > trend["ndcg_ranked"]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trend:")]
    assert said and "on the week before the night" in said[-1] and "->" in said[-1]
    assert trend["newness"] in (0.0, 0.5, 1.0) and f"newness {trend['newness']}" in said[-1]
    table = read_table(Path(on["path"]))
    rated_hot = set(ratings.loc[ratings.movie_id == 18, "user_id"])
    firsts = table[table["rank"] == 1].set_index("user_id")["movie_id"]
    assert all(firsts[u] == 18 for u in firsts.index if u not in rated_hot)
    assert (table.sort_values(["user_id", "rank"]).groupby("user_id")["score"].diff().dropna() <= 0).all()
    off = nightly_recommendations(data_dir=str(tmp_path / "off"), trend=False, **params)
    assert not off["trend"]["active"] and off["trend"]["reason"] == "turned off (--no-trend)"
    assert off["config_fingerprint"] != on["config_fingerprint"]
    plain = read_table(Path(off["path"]))
    assert not (plain[plain["rank"] == 1].set_index("user_id")["movie_id"] == 18).all()


def test_a_night_with_no_week_before_it_publishes_the_ranking_as_no_trend_does(archive, tmp_path):
    zip_path, _ = archive  # ratings end 1998-03-15: nothing in the week before 1998-04-01
    params = {**FAST, "model": "ease", "source": str(zip_path), "as_of": date(1998, 4, 1)}
    on = nightly_recommendations(data_dir=str(tmp_path / "on"), **params)
    off = nightly_recommendations(data_dir=str(tmp_path / "off"), trend=False, **params)
    assert on["trend"]["reason"].startswith("no ratings in the 7 days") and not on["trend"]["active"]
    cols = ["user_id", "rank", "movie_id", "score"]
    one, two = (read_table(Path(m["path"]))[cols].sort_values(cols).reset_index(drop=True) for m in (on, off))
    pd.testing.assert_frame_equal(one, two)


def test_a_failing_trend_choice_costs_the_night_nothing_but_the_trend(tmp_path, monkeypatch, caplog):
    from recsys_core import pipeline

    ratings = trending_ratings()
    zip_path = build_ml100k_zip(tmp_path / "ml-100k.zip", ratings, n_movies=18, folds=False)
    night = datetime.fromtimestamp(T0_TREND + 6 * WEEK, UTC).date()

    def broken(*args, **kwargs):
        raise MemoryError("no room for the ranker's second fit")

    monkeypatch.setattr(pipeline, "choose_night_trend", broken)
    manifest = nightly_recommendations(
        data_dir=str(tmp_path / "d"), **{**FAST, "model": "ease", "source": str(zip_path), "as_of": night}
    )
    assert manifest["rows"] > 0 and not manifest["trend"]["active"]
    assert manifest["trend"]["reason"] == "choosing it failed: MemoryError: no room for the ranker's second fit"
    assert any("--no-trend skips this step" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
