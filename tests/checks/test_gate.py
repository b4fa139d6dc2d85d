import gc

import pandas as pd
import pytest

from data_checks.gate import EARLIEST_TIMESTAMP, check_raw_data
from recsys_core.errors import DataContractError

STARS = (1.0, 2.0, 3.0, 4.0, 5.0)
MOVIES = pd.DataFrame(
    {
        "movie_id": [1, 2, 3],
        "title": ["A", "B", "C"],
        "year": pd.array([1990, None, 1999], dtype="Int16"),
        "genres": [["Drama"], [], ["Comedy"]],
    }
)


def _ratings(n: int = 300) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.array([1 + i % 10 for i in range(n)], dtype="Int64"),
            "movie_id": pd.array([1 + i % 3 for i in range(n)], dtype="Int64"),
            "rating": pd.array([float(1 + i % 5) for i in range(n)], dtype="float32"),
            "timestamp": pd.array([EARLIEST_TIMESTAMP + 1000 + i for i in range(n)], dtype="Int64"),
        }
    )


def test_clean_data_passes_untouched():
    res = check_raw_data(_ratings(), MOVIES, rating_values=STARS)
    assert len(res.rejects) == 0 and len(res.ratings) == 300
    assert str(res.ratings["user_id"].dtype) == "int64"
    assert all(r.success for r in res.reports)


@pytest.mark.parametrize("with_docs", [False, True])
def test_the_gate_lets_go_of_the_frames_it_validated(tmp_path, with_docs):
    """GX keeps validated frames in its last context; at 25M ratings that copy was 0.7 GB held
    through training. After the gate no frame of its own (the one with ``movie_known``) is alive.
    Frames an earlier test keeps (a module fixture that ran the gate) are not this call's."""

    def gate_frames() -> set[int]:
        gc.collect()
        frames = [o for o in gc.get_objects() if issubclass(type(o), pd.DataFrame)]  # type(): weak proxies too
        return {id(o) for o in frames if "movie_known" in o.columns}

    before = gate_frames()
    check_raw_data(_ratings(), MOVIES, rating_values=STARS, docs_dir=tmp_path / "docs" if with_docs else None)
    assert not gate_frames() - before


def test_row_faults_are_quarantined_with_reasons():
    r = _ratings()
    r.loc[0, "user_id"] = pd.NA
    r.loc[1, "rating"] = 7.0
    r.loc[2, "movie_id"] = 99
    r.loc[3, "timestamp"] = 100  # 1970: before MovieLens
    res = check_raw_data(r, MOVIES, rating_values=STARS, reject_threshold=0.05)
    assert len(res.rejects) == 4 and len(res.ratings) == 296
    reasons = dict(zip(res.rejects.index, res.rejects["reason"], strict=True))
    assert "user_id" in reasons[0] and "scale" in reasons[1]
    assert "not in the movies table" in reasons[2] and "1995" in reasons[3]


def test_too_many_rejects_stop_the_run():
    r = _ratings(100)
    r.loc[:5, "rating"] = 9.0
    with pytest.raises(DataContractError, match=r"over the 1\.0% threshold"):
        check_raw_data(r, MOVIES, rating_values=STARS)


def test_contract_breaks_raise_readable_reports():
    with pytest.raises(DataContractError, match="timestamp"):
        check_raw_data(_ratings().drop(columns="timestamp"), MOVIES, rating_values=STARS)
    with pytest.raises(DataContractError, match="expect_table_row_count_to_be_between"):
        check_raw_data(_ratings().iloc[:0], MOVIES, rating_values=STARS)
    with pytest.raises(DataContractError, match="movies"):
        check_raw_data(_ratings(), MOVIES.drop(columns="title"), rating_values=STARS)


def test_no_known_movie_is_a_contract_break():
    r = _ratings()
    r["movie_id"] = pd.array([500] * len(r), dtype="Int64")
    with pytest.raises(DataContractError, match="do not belong together"):
        check_raw_data(r, MOVIES, rating_values=STARS, reject_threshold=1.0)


def test_data_docs_site_is_written(tmp_path):
    r = _ratings()
    r.loc[1, "rating"] = 7.0
    check_raw_data(r, MOVIES, rating_values=STARS, reject_threshold=0.05, docs_dir=tmp_path / "docs")
    index = (tmp_path / "docs" / "index.html").read_text()
    assert "raw_ratings" in index and "raw_movies" in index
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 2
