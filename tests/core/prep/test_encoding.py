import numpy as np
import pandas as pd
import pytest

from recsys_core.prep.encoding import IdVocabulary, encode_ratings, fit_vocabulary


def _ratings() -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": [10, 3, 10, 7], "movie_id": [500, 2, 2, 99], "rating": [1.0, 2, 3, 4], "timestamp": [1, 2, 3, 4]}
    )


def test_round_trip_and_contiguous():
    vocab = fit_vocabulary(_ratings())
    assert vocab.user_ids.tolist() == [3, 7, 10]
    assert vocab.movie_ids.tolist() == [2, 99, 500]
    enc = encode_ratings(_ratings(), vocab)
    assert enc["user_idx"].tolist() == [2, 0, 2, 1]
    assert enc["movie_idx"].tolist() == [2, 0, 0, 1]
    assert vocab.decode_users(enc["user_idx"]).tolist() == [10, 3, 10, 7]
    assert vocab.decode_movies(enc["movie_idx"]).tolist() == [500, 2, 2, 99]


def test_unknown_id_is_an_error():
    vocab = fit_vocabulary(_ratings())
    with pytest.raises(KeyError, match="user_id"):
        vocab.encode_users(np.array([4]))
    with pytest.raises(KeyError, match="movie_id"):
        vocab.encode_movies(np.array([501]))


def test_save_load(tmp_path):
    vocab = fit_vocabulary(_ratings())
    vocab.save(tmp_path / "v.json")
    back = IdVocabulary.load(tmp_path / "v.json")
    assert back.user_ids.tolist() == vocab.user_ids.tolist()
    assert back.movie_ids.dtype == np.int64
