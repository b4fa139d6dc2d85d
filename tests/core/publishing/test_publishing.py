from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys_core.data.schema import RECOMMENDATIONS_SCHEMA
from recsys_core.errors import PublishError
from recsys_core.models import create_model
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.publishing.table import (
    build_table,
    promote,
    publish_lock,
    read_latest,
    read_manifest,
    run_partition,
    staging_dir,
    write_manifest,
    write_part,
)
from recsys_core.serving.topn import recommend_top_n
from tests.builders import synth_ratings

NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def _table(n: int = 5):
    ratings = synth_ratings(n_users=8, n_movies=20, per_user=6)
    vocab = fit_vocabulary(ratings)
    inter = to_interactions(ratings, vocab)
    model = create_model("bias").fit(inter)
    top = recommend_top_n(model, inter.to_csr(), n)
    movies = pd.DataFrame({"movie_id": vocab.movie_ids, "title": [f"M{m}" for m in vocab.movie_ids]})
    return build_table(top, vocab, movies, model, run_id="r1", generated_at=NOW), ratings


def test_table_matches_contract(tmp_path):
    table, ratings = _table()
    path = write_part(table, tmp_path)
    schema = pq.read_schema(path)
    assert schema.equals(RECOMMENDATIONS_SCHEMA, check_metadata=False)
    assert schema.metadata[b"recsys.schema_version"] == b"1"
    assert table.groupby("user_id").size().eq(5).all()
    assert table["title"].notna().all()
    seen = set(zip(ratings.user_id, ratings.movie_id, strict=True))
    assert not any((u, m) in seen for u, m in zip(table.user_id, table.movie_id, strict=True))


def test_promote_is_rename_and_refuses_overwrite(tmp_path):
    table, _ = _table()
    staging = staging_dir(tmp_path, "r1")
    write_part(table, staging)
    final = promote(staging, run_partition(tmp_path, "r1", NOW))
    assert final.name == "run_id=r1" and final.parent.name == "dt=2026-11-21"
    assert not staging.exists()
    write_part(table, staging)
    with pytest.raises(PublishError, match="already exists"):
        promote(staging, final)


def test_manifest_round_trip_and_read_latest(tmp_path):
    assert read_manifest(tmp_path) is None
    with pytest.raises(PublishError, match="recsys run"):
        read_latest(tmp_path)
    table, _ = _table()
    final = write_part(table, run_partition(tmp_path, "r1", NOW)).parent
    write_manifest(tmp_path, {"run_id": "r1", "path": str(final)})
    manifest, back = read_latest(tmp_path)
    assert manifest["run_id"] == "r1" and len(back) == len(table)


def test_lock_refuses_second_publisher_without_wait(tmp_path):
    with publish_lock(tmp_path):
        with pytest.raises(PublishError, match="Another run"):
            with publish_lock(tmp_path, wait=False):
                pass
    with publish_lock(tmp_path, wait=False):
        pass


def test_rating_free_model_gives_null_predictions(tmp_path):
    ratings = synth_ratings(n_users=4, n_movies=10, per_user=3)
    vocab = fit_vocabulary(ratings)
    inter = to_interactions(ratings, vocab)
    model = create_model("popularity").fit(inter)
    top = recommend_top_n(model, inter.to_csr(), 3)
    movies = pd.DataFrame({"movie_id": vocab.movie_ids, "title": ["t"] * vocab.n_movies})
    table = build_table(top, vocab, movies, model, run_id="r", generated_at=NOW)
    assert table["predicted_rating"].isna().all()
    assert np.all(np.diff(table[table.user_id == table.user_id.iloc[0]]["score"].to_numpy()) <= 0)


@pytest.mark.parametrize("model_name", ["bias", "popularity"])
def test_batched_part_reads_back_like_the_frame_part(tmp_path, model_name):
    """stage_table's Arrow batches (several per part here) give the same file content, schema
    metadata included, as build_table + write_part: padded rows dropped, missing titles null."""
    from recsys_core.publishing.table import iter_table_batches, movie_titles, read_table, table_schema, write_batches

    ratings = synth_ratings(n_users=9, n_movies=12, per_user=9)
    vocab = fit_vocabulary(ratings)
    inter = to_interactions(ratings, vocab)
    model = create_model(model_name).fit(inter)
    top = recommend_top_n(model, inter.to_csr(), 5)  # some users have fewer than 5 unseen movies
    assert not top.valid().all()
    movies = pd.DataFrame({"movie_id": vocab.movie_ids[1:], "title": [f"M{m}" for m in vocab.movie_ids[1:]]})
    write_part(build_table(top, vocab, movies, model, run_id="r1", generated_at=NOW), tmp_path / "frame")
    batches = iter_table_batches(
        top, vocab, movie_titles(vocab, movies), model, run_id="r1", generated_at=NOW, batch_users=2
    )
    write_batches(batches, table_schema(model, "r1", NOW), tmp_path / "batched")
    old, new = read_table(tmp_path / "frame"), read_table(tmp_path / "batched")
    pd.testing.assert_frame_equal(old, new)
    assert old["title"].isna().any()
    assert pq.read_schema(tmp_path / "batched" / "part-00000.parquet").equals(
        pq.read_schema(tmp_path / "frame" / "part-00000.parquet"), check_metadata=True
    )
    assert write_batches(iter([]), table_schema(model, "r1", NOW), tmp_path / "empty") is None
    scores = read_table(tmp_path / "batched", columns=["score", "rank"])  # what the report reads
    assert list(scores.columns) == ["score", "rank"]
    pd.testing.assert_frame_equal(scores, new[["score", "rank"]])
