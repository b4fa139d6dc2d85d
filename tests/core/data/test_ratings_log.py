"""A ratings log folder as a data source: layout, pruning, faults, dataset.json, fingerprint, export."""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_core.config import NightlyConfig, build_config
from recsys_core.data.datasets import get_dataset
from recsys_core.data.ratings_log import (
    export_log,
    fingerprint_log,
    list_rating_files,
    load_log_spec,
    read_ratings_log,
)
from recsys_core.data.readers import read_release
from recsys_core.data.schema import RATINGS_DTYPES
from recsys_core.errors import ConfigError, DataContractError
from recsys_core.nights.calendar import cutoff_seconds
from tests.builders import build_ml100k_zip, synth_ratings
from tests.core.data.test_readers import assert_canonical

DAY = 86_400
D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)
SPEC = {"name": "my-app", "rating_values": [1, 2, 3, 4, 5]}
ML100K = get_dataset("ml-100k")
MOVIES_CSV = "movie_id,title,genres\n1,Alpha (1999),Drama|War\n2,Beta (2001),Comedy\n3,Gamma,\n"


def day_ratings(day: date, rows: list[tuple[int, int, float]], offset: int = 3_600) -> pd.DataFrame:
    """Ratings on ``day``, one minute apart from ``offset`` seconds after midnight."""
    start = cutoff_seconds(day) + offset
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "movie_id": [r[1] for r in rows],
            "rating": pd.array([r[2] for r in rows], dtype="float32"),
            "timestamp": [start + 60 * i for i in range(len(rows))],
        }
    )


def write_log(
    root: Path,
    files: dict[str, pd.DataFrame | str | bytes],
    *,
    movies: str = MOVIES_CSV,
    spec: dict | str | None = None,
) -> Path:
    """A log folder: ``files`` maps paths under ratings/ to frames (.parquet/.csv by suffix) or raw content."""
    (root / "ratings").mkdir(parents=True)
    for rel, content in files.items():
        path = root / "ratings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        elif path.suffix == ".parquet":
            pq.write_table(pa.Table.from_pandas(content, preserve_index=False), path)
        else:
            content.to_csv(path, index=False)
    (root / "movies.csv").write_text(movies)
    text = spec if isinstance(spec, str) else json.dumps(spec or SPEC)
    (root / "dataset.json").write_text(text)
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file's (size, mtime_ns, bytes): to show a read changes nothing."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def partitioned_log(root: Path) -> Path:
    return write_log(
        root,
        {
            f"dt={D1}/part-0.parquet": day_ratings(D1, [(1, 1, 4), (2, 2, 3)]),
            f"dt={D2}/part-0.parquet": day_ratings(D2, [(1, 2, 5), (3, 1, 2)]),
            f"dt={D3}/part-0.parquet": day_ratings(D3, [(2, 3, 1)]),
        },
    )


# --- reading and pruning ---------------------------------------------------------------------


def test_reads_every_partition_into_canonical_frames(tmp_path: Path) -> None:
    release = read_ratings_log(partitioned_log(tmp_path / "log"))
    assert_canonical(release, 5, 3)
    assert release.malformed.empty and release.folds == {} and release.users is None
    movies = release.movies.set_index("movie_id")
    assert movies.loc[1, "title"] == "Alpha" and movies.loc[1, "year"] == 1999
    assert movies.loc[1, "genres"] == ["Drama", "War"] and movies.loc[3, "genres"] == []
    assert pd.isna(movies.loc[3, "year"])


def test_a_cutoff_prunes_later_partitions_without_opening_them(tmp_path: Path) -> None:
    root = partitioned_log(tmp_path / "log")
    (root / "ratings" / f"dt={D3}" / "part-0.parquet").write_bytes(b"not parquet at all")
    before = snapshot(root)
    release = read_ratings_log(root, cutoff_seconds(D3))
    assert len(release.ratings) == 4
    assert (release.ratings["timestamp"] < cutoff_seconds(D3)).all()
    with pytest.raises(DataContractError, match=f"dt={D3}"):  # without the cutoff the same file is read
        read_ratings_log(root)
    assert snapshot(root) == before


def test_a_cutoff_within_a_day_reads_that_day_and_filters_it(tmp_path: Path) -> None:
    root = partitioned_log(tmp_path / "log")
    noon = cutoff_seconds(D2) + 3_600 + 30  # after the day's first rating, before its second
    ratings = read_ratings_log(root, noon).ratings
    assert len(ratings) == 3 and ratings["timestamp"].max() < noon


def test_unpartitioned_csv_files_are_read_and_filtered(tmp_path: Path) -> None:
    both = pd.concat([day_ratings(D1, [(1, 1, 4), (2, 2, 3)]), day_ratings(D3, [(3, 3, 5)])])
    root = write_log(tmp_path / "log", {"all.csv": both, "more/extra.csv": day_ratings(D2, [(4, 1, 2)])})
    assert [f.day for f in list_rating_files(root)] == [None, None]
    release = read_ratings_log(root, cutoff_seconds(D3))
    assert_canonical(release, 3, 3)
    assert sorted(release.ratings["user_id"]) == [1, 2, 4]
    assert len(read_ratings_log(root).ratings) == 4


def test_csv_and_parquet_partitions_mix_and_types_are_coerced(tmp_path: Path) -> None:
    odd = day_ratings(D1, [(1, 1, 4), (2, 2, 3)]).astype({"user_id": "int32", "timestamp": "float64"})
    odd["rating"] = ["4", "3"]  # a text column of numbers
    root = write_log(tmp_path / "log", {f"dt={D1}/a.parquet": odd, f"dt={D2}/b.csv": day_ratings(D2, [(3, 1, 5)])})
    ratings = read_ratings_log(root).ratings
    assert {c: str(t) for c, t in ratings.dtypes.items()} == RATINGS_DTYPES
    assert ratings["rating"].tolist() == [4.0, 3.0, 5.0]


def test_read_release_dispatches_the_log_layout(tmp_path: Path) -> None:
    root = partitioned_log(tmp_path / "log")
    assert len(read_release(root, "log").ratings) == 5
    assert len(read_release(root, "log", cutoff=cutoff_seconds(D2)).ratings) == 2


def test_read_release_applies_a_cutoff_to_archives_too(tmp_path: Path) -> None:
    ratings = synth_ratings()
    zpath = build_ml100k_zip(tmp_path / "ml-100k.zip", ratings)
    cutoff = int(ratings["timestamp"].median())
    assert len(read_release(zpath, "ml-100k", cutoff=cutoff).ratings) == int((ratings["timestamp"] < cutoff).sum())


# --- faults ------------------------------------------------------------------------------------


def test_row_faults_go_to_malformed_and_good_rows_are_kept(tmp_path: Path) -> None:
    start = cutoff_seconds(D1)
    csv = (
        "user_id,movie_id,rating,timestamp\n"
        f"1,1,4,{start + 10}\n"
        f"2,two,3,{start + 20}\n"  # not a number
        f"3,1\n"  # too few fields
        f"4,2,5,{start + 2 * DAY}\n"  # outside its partition's day
        f"5,3,,{start + 30}\n"  # missing rating
        f"6,2,1,{start + 40}\n"
    )
    root = write_log(tmp_path / "log", {f"dt={D1}/part-0.csv": csv})
    release = read_ratings_log(root)
    assert release.ratings["user_id"].tolist() == [1, 6]
    bad = release.malformed.sort_values("line").reset_index(drop=True)
    assert bad["member"].unique().tolist() == [f"ratings/dt={D1}/part-0.csv"]
    assert bad["line"].tolist() == [3, 4, 5, 6]
    assert "movie_id" in bad.loc[0, "reason"] and bad.loc[0, "text"].startswith("2,two,3,")
    assert "field(s)" in bad.loc[1, "reason"]
    assert f"outside its partition dt={D1}" in bad.loc[2, "reason"]
    assert "rating" in bad.loc[3, "reason"]


def test_a_bad_row_after_the_cutoff_is_not_tonights(tmp_path: Path) -> None:
    start = cutoff_seconds(D1)
    csv = f"user_id,movie_id,rating,timestamp\n1,1,4,{start}\n2,x,3,{start + 5 * DAY}\n3,y,3,\n"
    release = read_ratings_log(write_log(tmp_path / "log", {"all.csv": csv}), cutoff_seconds(D2))
    assert len(release.ratings) == 1
    assert release.malformed["line"].tolist() == [4]  # no timestamp: it may be tonight's, so it is reported


def test_malformed_rows_reach_the_gate_and_its_threshold(tmp_path: Path) -> None:
    from data_checks.gate import check_raw_data

    start = cutoff_seconds(D1)
    rows = "".join(f"{u},1,4,{start + u}\n" for u in range(1, 50))
    root = write_log(tmp_path / "log", {f"dt={D1}/p.csv": f"user_id,movie_id,rating,timestamp\n{rows}7,z,4,{start}\n"})
    release = read_ratings_log(root)
    kwargs = {"rating_values": (1, 2, 3, 4, 5), "malformed": release.malformed, "now": start + DAY}
    gated = check_raw_data(release.ratings, release.movies, reject_threshold=0.05, **kwargs)
    assert len(gated.ratings) == 49 and gated.rejects["member"].tolist() == [f"ratings/dt={D1}/p.csv"]
    with pytest.raises(DataContractError, match="threshold"):
        check_raw_data(release.ratings, release.movies, reject_threshold=0.01, **kwargs)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("part-0.parquet", b"PAR1 garbage", "cannot be read as Parquet"),
        ("part-0.csv", "user_id,movie_id,timestamp\n1,1,5\n", "no rating column"),
        ("part-0.csv", "", "empty"),
        (
            "part-0.parquet",
            pd.DataFrame({"user_id": [1], "movie_id": [1], "rating": [[1]], "timestamp": [1]}),
            "rating",
        ),
    ],
)
def test_an_unreadable_file_stops_the_read_naming_it_and_changes_nothing(tmp_path, name, content, needle) -> None:
    good = day_ratings(D1, [(1, 1, 4)])
    root = write_log(tmp_path / "log", {f"dt={D1}/part-0.parquet": good, f"dt={D2}/{name}": content})
    before = snapshot(root)
    with pytest.raises(DataContractError) as caught:
        read_ratings_log(root)
    message = str(caught.value)
    assert needle in message and f"dt={D2}" in message and name in message
    assert "Replace the file" in message and "\n" not in message
    assert snapshot(root) == before


def test_a_partition_folder_that_is_not_a_day_is_refused(tmp_path: Path) -> None:
    root = write_log(tmp_path / "log", {"dt=2024-13-01/p.csv": day_ratings(D1, [(1, 1, 4)])})
    with pytest.raises(DataContractError, match="dt=2024-13-01.*YYYY-MM-DD"):
        read_ratings_log(root)


def test_hidden_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    files = {
        f"dt={D1}/p.csv": day_ratings(D1, [(1, 1, 4)]),
        f"dt={D1}/_SUCCESS": "",
        ".tmp/x.csv": "junk",
        "a.txt": "x",
    }
    root = write_log(tmp_path / "log", files)
    assert [f.relative for f in list_rating_files(root)] == [f"ratings/dt={D1}/p.csv"]


# --- the folder and dataset.json --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ({"rating_values": [1, 2]}, "'name'"),
        ({"name": "a"}, "'rating_values'"),
        ({"name": "a b", "rating_values": [1, 2]}, "field 'name'"),
        ({"name": "a", "rating_values": "1-5"}, "field 'rating_values'"),
        ({"name": "a", "rating_values": [1, "2"]}, "field 'rating_values' holds '2'"),
        ({"name": "a", "rating_values": [5]}, "two distinct"),
        ({"name": "a", "rating_values": [1, 1, 2]}, "repeats"),
        ({"name": "a", "rating_values": [1, 2], "rating_scale": "x"}, "unknown field(s) 'rating_scale'"),
        ({"name": "a", "rating_values": [1, 2], "format_version": 2}, "format_version"),
    ],
)
def test_dataset_json_errors_name_the_file_and_field(tmp_path, spec, needle) -> None:
    root = write_log(tmp_path / "log", {"a.csv": day_ratings(D1, [(1, 1, 4)])}, spec=spec)
    with pytest.raises(DataContractError) as caught:
        load_log_spec(root)
    assert str(root / "dataset.json") in str(caught.value) and needle in str(caught.value)


def test_dataset_json_gives_the_spec(tmp_path: Path) -> None:
    spec_json = {"name": "my-app", "rating_values": [5, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5], "description": "x"}
    spec = load_log_spec(write_log(tmp_path / "log", {"a.csv": day_ratings(D1, [(1, 1, 4)])}, spec=spec_json))
    assert (spec.name, spec.layout, spec.url, spec.folds) == ("my-app", "log", "", ())
    assert spec.rating_values == tuple(x / 2 for x in range(1, 11))


@pytest.mark.parametrize(
    ("breakage", "needle"),
    [
        ("missing", "does not exist"),
        ("file", "is a file"),
        ("no-ratings", "no ratings/ folder"),
        ("empty-ratings", "no *.parquet or *.csv"),
        ("no-movies", "neither movies.parquet nor movies.csv"),
        ("two-movies", "both movies.parquet and movies.csv"),
        ("no-spec", "no dataset.json"),
    ],
)
def test_the_folder_layout_is_checked(tmp_path, breakage, needle) -> None:
    root = write_log(tmp_path / "log", {"a.csv": day_ratings(D1, [(1, 1, 4)])})
    target = root
    if breakage == "missing":
        target = tmp_path / "nowhere"
    elif breakage == "file":
        target = root / "movies.csv"
    elif breakage == "no-ratings":
        os.rename(root / "ratings", root / "elsewhere")
    elif breakage == "empty-ratings":
        (root / "ratings" / "a.csv").unlink()
    elif breakage == "no-movies":
        (root / "movies.csv").unlink()
    elif breakage == "two-movies":
        (root / "movies.parquet").write_bytes(b"")
    elif breakage == "no-spec":
        (root / "dataset.json").unlink()
    with pytest.raises(DataContractError, match=re.escape(needle)):
        load_log_spec(target)
    with pytest.raises(ConfigError, match=f"--source {re.escape(str(target))}.*{re.escape(needle)}"):
        build_config({"dataset": "log", "source": str(target), "data_dir": str(tmp_path / "data")})


def test_config_accepts_a_log_folder_and_requires_source(tmp_path: Path) -> None:
    root = partitioned_log(tmp_path / "log")
    config = build_config({"dataset": "log", "source": str(root), "data_dir": str(tmp_path / "data")})
    assert config.dataset == "log" and config.source == str(root)
    assert NightlyConfig(dataset="log", source=str(root)).dataset == "log"
    for values, needle in (
        ({"dataset": "log"}, "--source DIR"),
        ({"dataset": "log", "source": "https://example.org/log"}, "--source DIR"),
        ({"dataset": "log", "source": str(root), "split": "u1"}, "has none"),
    ):
        with pytest.raises(ConfigError, match=needle):
            build_config({**values, "data_dir": str(tmp_path / "data")})
    with pytest.raises(ConfigError, match="dataset.json"):
        (root / "dataset.json").write_text("{}")
        build_config({"dataset": "log", "source": str(root), "data_dir": str(tmp_path / "data")})


# --- fingerprint ---------------------------------------------------------------------------------


def test_fingerprint_ignores_pruned_partitions_and_sees_the_rest(tmp_path: Path) -> None:
    root = partitioned_log(tmp_path / "log")
    night = cutoff_seconds(D3)
    first = fingerprint_log(root, night)
    assert first == fingerprint_log(root, night) and len(first) == 64
    day3 = root / "ratings" / f"dt={D3}" / "part-0.parquet"
    day3.write_bytes(b"changed, and much longer than before")
    write_log_file = root / "ratings" / "dt=2024-05-09" / "part-0.csv"
    write_log_file.parent.mkdir()
    day_ratings(date(2024, 5, 9), [(9, 9, 1)]).to_csv(write_log_file, index=False)
    assert fingerprint_log(root, night) == first  # only partitions on or after the night changed
    assert fingerprint_log(root, None) != fingerprint_log(root, cutoff_seconds(D2))
    day1 = root / "ratings" / f"dt={D1}" / "part-0.parquet"
    stat = day1.stat()
    os.utime(day1, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = fingerprint_log(root, night)
    assert second != first  # a past partition was touched
    (root / "dataset.json").write_text(json.dumps({**SPEC, "description": "edited"}))
    assert fingerprint_log(root, night) != second


# --- export --------------------------------------------------------------------------------------


def sorted_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["timestamp", "user_id", "movie_id"]).reset_index(drop=True)


def test_export_then_read_gives_the_release_back(tmp_path: Path) -> None:
    release = read_release(build_ml100k_zip(tmp_path / "ml-100k.zip", synth_ratings()), "ml-100k")
    spec = ML100K
    summary = export_log(release, spec, tmp_path / "out" / "log")
    root = Path(summary["path"])
    assert summary["ratings"] == len(release.ratings) and summary["movies"] == len(release.movies)
    days = {f.day for f in list_rating_files(root)}
    assert len(days) == summary["days"] and all(f.is_parquet for f in list_rating_files(root))
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no staging left
    assert load_log_spec(root).rating_values == spec.rating_values
    back = read_ratings_log(root)
    pd.testing.assert_frame_equal(sorted_ratings(back.ratings), sorted_ratings(release.ratings))
    pd.testing.assert_frame_equal(back.movies, release.movies)
    assert back.malformed.empty
    ts = release.ratings["timestamp"]
    for cutoff in (int(ts.min()), int(ts.quantile(0.3)), cutoff_seconds(date(1998, 1, 1)), int(ts.max()) + 1):
        expected = release.ratings[ts < cutoff]
        pd.testing.assert_frame_equal(sorted_ratings(read_ratings_log(root, cutoff).ratings), sorted_ratings(expected))


def test_export_refuses_a_folder_that_is_not_empty_and_accepts_an_empty_one(tmp_path: Path) -> None:
    release = read_release(build_ml100k_zip(tmp_path / "ml-100k.zip"), "ml-100k")
    spec = ML100K
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        export_log(release, spec, full)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert (full / "keep.txt").read_text() == "mine" and len(list(full.iterdir())) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_log(release, spec, empty)["ratings"] == len(release.ratings)


def test_export_refuses_ratings_it_cannot_place_in_a_day_and_leaves_nothing(tmp_path: Path) -> None:
    release = read_release(build_ml100k_zip(tmp_path / "ml-100k.zip"), "ml-100k")
    stamps = release.ratings["timestamp"].tolist()
    release.ratings["timestamp"] = pd.array([None, *stamps[1:]], dtype="Int64")  # as a reader leaves a bad value
    with pytest.raises(DataContractError, match="1 ratings"):
        export_log(release, ML100K, tmp_path / "log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml-100k.zip"]


@pytest.mark.realdata
def test_real_ml100k_exports_and_reads_back(ml100k_real: Path, tmp_path: Path) -> None:
    release = read_release(ml100k_real, "ml-100k", with_folds=False)
    summary = export_log(release, ML100K, tmp_path / "ml-100k-log")
    assert summary["ratings"] == 100_000 and summary["first_day"] == "1997-09-20"
    back = read_ratings_log(tmp_path / "ml-100k-log")
    assert_canonical(back, 100_000, 1_682)
    assert back.malformed.empty
    pd.testing.assert_frame_equal(sorted_ratings(back.ratings), sorted_ratings(release.ratings))
    pd.testing.assert_frame_equal(back.movies, release.movies)
    night = cutoff_seconds(date(1998, 1, 1))
    assert len(read_ratings_log(tmp_path / "ml-100k-log", night).ratings) == int(
        (release.ratings["timestamp"] < night).sum()
    )


def test_columns_are_coerced_value_by_value() -> None:
    from recsys_core.data.ratings_log.columns import coerce_column

    def coerce(values: list, target: pa.DataType, kind: pa.DataType | None = None) -> list:
        return coerce_column(pa.chunked_array([pa.array(values, kind)]), target).to_pylist()

    assert coerce(["+5", " 7 ", "x", "", None, "-3", "+-3"], pa.int64()) == [5, 7, None, None, None, -3, None]
    assert coerce(["4.5", ".5", "5.", "four"], pa.float32(), pa.large_string()) == [4.5, 0.5, 5.0, None]
    assert coerce([1.0, 2.5, float("nan"), float("inf")], pa.int64()) == [1, None, None, None]
    assert coerce([2**64 - 1, 3], pa.int64(), pa.uint64()) == [None, 3]
    assert coerce([1_714_521_600_000], pa.int64(), pa.timestamp("ms", "UTC")) == [1_714_521_600]


def test_describe_log_span_reads_partition_names_and_unpartitioned_timestamps(tmp_path):
    from datetime import date

    import pandas as pd

    from recsys_core.data.ratings_log.span import describe_log_span

    ratings = tmp_path / "ratings"
    for day in ("2024-01-02", "2024-03-05"):
        (ratings / f"dt={day}").mkdir(parents=True)
        (ratings / f"dt={day}" / "part-0.parquet").write_bytes(b"never opened")
    pd.DataFrame({"user_id": [1], "movie_id": [2], "rating": [3.0], "timestamp": [1_700_000_000]}).to_csv(
        ratings / "extra.csv", index=False
    )
    assert describe_log_span(tmp_path) == (date(2023, 11, 14), date(2024, 3, 5))
