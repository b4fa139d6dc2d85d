"""pipeline.choose_night_trend / apply_trend with real models on a release where what trends lasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core import pipeline
from recsys_core.data.datasets import get_dataset
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.serving.topn import recommend_top_n
from tests.builders import T0_TREND as T0
from tests.builders import WEEK, trending_ratings

NIGHT = T0 + 6 * WEEK
SPEC = get_dataset("ml-100k")


@pytest.fixture(scope="module")
def night():
    ratings = trending_ratings()
    vocab = fit_vocabulary(ratings)
    scale = pipeline.decide_scale(ratings, vocab)
    params = {"ranker": "ease", "rater": "bias", "ranker_params": {}, "rater_params": {}}
    movies = pd.DataFrame({"movie_id": range(1, 19), "genres": [["Drama"]] * 18, "year": [1995] * 18})
    trained = pipeline.train("combined", ratings, vocab, spec=SPEC, scale=scale, movies=movies, seed=0, params=params)
    return ratings, vocab, scale, trained.model


def test_the_night_refits_only_the_ranker_before_the_week_and_chooses_a_weight(night, monkeypatch):
    ratings, vocab, scale, model = night
    fitted = []
    real_train = pipeline.train

    def spy(name, frame, *args, **kwargs):
        fitted.append((name, int(frame["timestamp"].max()), kwargs["validation_fraction"], kwargs["params"]))
        return real_train(name, frame, *args, **kwargs)

    monkeypatch.setattr(pipeline, "train", spy)
    choice = pipeline.choose_night_trend(model, ratings, vocab, spec=SPEC, scale=scale, cutoff=NIGHT, depth=20, k=5)
    assert [f[0] for f in fitted] == ["ease"]  # combined's ranker, not its rater
    assert fitted[0][1] < NIGHT - WEEK  # on the ratings before the week it is judged on
    assert fitted[0][2] == 0.0 and fitted[0][3]["lambdas"] == [model.ranker.lam]  # its choices fixed
    assert choice.active and choice.ndcg_trend > choice.ndcg_ranked and choice.users > 0


def test_the_trend_puts_the_hot_movie_on_the_lists_of_those_who_have_not_rated_it(night):
    ratings, vocab, scale, model = night
    choice = pipeline.choose_night_trend(model, ratings, vocab, spec=SPEC, scale=scale, cutoff=NIGHT, depth=20, k=5)
    seen = to_interactions(ratings, vocab).to_csr()
    ranked = recommend_top_n(model, seen, 20)
    lists = pipeline.apply_trend(
        ranked, choice, seen, pipeline.night_trend_prior(ratings, vocab, NIGHT, choice.days, choice.newness)
    )
    hot = vocab.encode_movies(pd.Series([18]))[0]
    missing = np.flatnonzero(seen[:, hot].toarray().ravel() == 0)
    assert len(missing) and all(lists.movie_idx[u, 0] == hot for u in missing)
    off = pipeline.apply_trend(ranked, pipeline.TrendChoice(reason="off"), seen, None)
    assert off is ranked


def test_no_timestamps_no_trend(night):
    ratings, vocab, scale, model = night
    choice = pipeline.choose_night_trend(
        model, ratings.drop(columns="timestamp"), vocab, spec=SPEC, scale=scale, cutoff=NIGHT, depth=20
    )
    assert not choice.active and "timestamps" in choice.reason


def test_the_nights_prior_with_newness_counts_every_rating_before_the_night():
    # movie 1: 4 ratings long ago and 2 in the last week; movie 2: new, 2 ratings in the last week;
    # a rating at the night itself is tomorrow's and counts nowhere
    day = 86_400
    rows = [(u, 1, NIGHT - 60 * day) for u in range(4)] + [(u, 1, NIGHT - day) for u in (4, 5)]
    rows += [(u, 2, NIGHT - 2 * day) for u in (6, 7)] + [(8, 2, NIGHT)]
    ratings = pd.DataFrame(rows, columns=["user_id", "movie_id", "timestamp"]).assign(rating=4.0)
    vocab = fit_vocabulary(ratings)
    m1, m2 = vocab.encode_movies(pd.Series([1, 2]))
    plain = pipeline.night_trend_prior(ratings, vocab, NIGHT, 7)
    new = pipeline.night_trend_prior(ratings, vocab, NIGHT, 7, 1.0)
    assert plain[m1] == plain[m2] == 1.0  # 2 recent ratings each
    assert new[m2] == 1.0 and new[m1] == pytest.approx(1 / 3)  # 2 of movie 1's 6 ratings are recent
