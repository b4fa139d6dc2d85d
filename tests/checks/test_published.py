from datetime import UTC, datetime

import pandas as pd
import pytest

from data_checks.published import check_recommendations, raise_if_invalid
from recsys_core.errors import PublishError

NOW = pd.Timestamp(datetime(2026, 1, 1, tzinfo=UTC))


def _table() -> pd.DataFrame:
    rows = [(u, r, 10 * u + r, f"t{r}", 1.0 - r / 10, None, "m@v1", "run", NOW) for u in (1, 2) for r in (1, 2, 3)]
    cols = ["user_id", "rank", "movie_id", "title", "score", "predicted_rating", "model", "run_id", "generated_at"]
    return pd.DataFrame(rows, columns=cols)


SEEN = pd.DataFrame({"user_id": [1, 2], "movie_id": [99, 98]})


def test_good_table_passes():
    report = check_recommendations(_table(), SEEN, top_n=3, n_users=2, n_movies=50)
    assert report.success, report.to_markdown()
    raise_if_invalid(report, "x")


@pytest.mark.parametrize(
    "break_it, needle",
    [
        (lambda t: t.assign(score=t["score"][::-1].to_numpy()), "score_not_increasing"),
        (lambda t: t.iloc[:-1], "rows_per_user_ok"),
        (lambda t: t.assign(rank=[1, 1, 3, 1, 2, 3]), "rank_is_position"),
        (lambda t: t[t.user_id == 1], "user_id"),
        (lambda t: t.assign(movie_id=[99, 12, 13, 21, 22, 23]), "seen"),
        (lambda t: t.assign(title=[None, "a", "b", "c", "d", "e"]), "title"),
    ],
)
def test_each_break_is_caught(break_it, needle):
    report = check_recommendations(break_it(_table()), SEEN, top_n=3, n_users=2, n_movies=50)
    assert not report.success
    with pytest.raises(PublishError, match=needle):
        raise_if_invalid(report, "staging")


def test_user_who_rated_everything_may_have_no_list():
    table = _table()
    seen = pd.concat([SEEN, pd.DataFrame({"user_id": [3] * 50, "movie_id": range(50)})], ignore_index=True)
    report = check_recommendations(table, seen, top_n=3, n_users=3, n_movies=50)
    assert report.success, report.to_markdown()
    assert not check_recommendations(table, SEEN.iloc[:0], top_n=3, n_users=3, n_movies=50).success
