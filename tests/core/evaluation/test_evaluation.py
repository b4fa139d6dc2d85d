import numpy as np
import pandas as pd
import pytest

from recsys_core.evaluation.evaluate import evaluate_baselines, evaluate_model
from recsys_core.models import create_model
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import make_split
from tests.builders import synth_ratings


def _biased_ratings(seed: int = 0) -> pd.DataFrame:
    """Ratings = movie quality + user leniency + noise: what the bias baseline models."""
    rng = np.random.default_rng(seed)
    quality, leniency = rng.normal(0, 1, 30), rng.normal(0, 0.5, 40)
    rows = [
        (u + 1, m + 1, float(np.clip(np.round(3 + quality[m] + leniency[u] + rng.normal(0, 0.3)), 1, 5)), 1)
        for u in range(40)
        for m in rng.choice(30, 15, replace=False)
    ]
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def test_baselines_and_model_metrics_are_sane():
    ratings = _biased_ratings()
    vocab = fit_vocabulary(ratings)
    split = make_split(ratings, "stratified", seed=0)
    train, test = to_interactions(split.train, vocab), to_interactions(split.test, vocab)
    base = evaluate_baselines(train, test, k=5)
    assert base["global_mean"]["ndcg_at_k"] is None and base["global_mean"]["rmse"] > 0
    assert base["popularity"]["rmse"] is None and 0 <= base["popularity"]["ndcg_at_k"] <= 1
    bias = create_model("bias").fit(train)
    m = evaluate_model(bias, train, test, k=5)
    assert m["rmse"] < base["global_mean"]["rmse"]
    for key in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage"):
        assert 0.0 <= m[key] <= 1.0
    assert m["k"] == 5


@pytest.mark.slow
def test_biased_mf_learns_structure():
    ratings = synth_ratings(n_users=60, n_movies=30, per_user=20)
    vocab = fit_vocabulary(ratings)
    split = make_split(ratings, "random", seed=0)
    train, test = to_interactions(split.train, vocab), to_interactions(split.test, vocab)
    mf = create_model("biased_mf", seed=1, epochs=60, learning_rate=0.02, dim=8, l2=1e-5, batch_size=64).fit(
        train, test
    )
    gm = create_model("global_mean").fit(train)
    assert evaluate_model(mf, train, test)["rmse"] < evaluate_model(gm, train, test)["rmse"]


def test_shared_order_top_n_equals_the_scorer_for_popularity():
    """Popularity's evaluation shortcut gives recommend_top_n's lists and scores exactly: tied
    counts, users who saw most movies (wider windows), one who saw all (padding)."""
    import numpy as np

    from recsys_core.evaluation.evaluate import shared_order_top_n
    from recsys_core.models import create_model
    from recsys_core.prep.interactions import Interactions
    from recsys_core.serving.topn import recommend_top_n

    rng = np.random.default_rng(3)
    n_users, n_movies = 40, 30
    pairs = {(u, m) for u in range(n_users) for m in range(n_movies) if rng.random() < 0.15 + 0.8 * (u < 5)}
    pairs |= {(7, m) for m in range(n_movies)}  # nothing left for user 7
    users, movies = map(np.array, zip(*sorted(pairs), strict=True))
    train = Interactions(
        users.astype(np.int32), movies.astype(np.int32), np.ones(len(users), np.float32), n_users, n_movies
    )
    model = create_model("popularity").fit(train)
    assert len(np.unique(model.counts)) < n_movies  # ties
    seen, asked = train.to_csr(), np.arange(n_users, dtype=np.int32)
    for window in (1, 64):
        got = shared_order_top_n(model.counts, seen, 6, asked, window=window)
        want = recommend_top_n(model, seen, 6, user_idx=asked)
        np.testing.assert_array_equal(got.movie_idx, want.movie_idx)
        np.testing.assert_array_equal(got.scores, want.scores)
        np.testing.assert_array_equal(got.user_idx, want.user_idx)
    assert (got.movie_idx[7] == -1).all()


def test_bias_baseline_ranks_by_movie_bias_like_the_scorer():
    """The bias baseline's evaluation shortcut (one order by movie bias: a user's bias shifts all
    of the user's scores alike) gives the lists the full users x movies scorer gives."""
    import numpy as np

    from recsys_core.evaluation.evaluate import shared_order_top_n
    from recsys_core.models import create_model
    from recsys_core.prep.interactions import Interactions
    from recsys_core.serving.topn import recommend_top_n

    rng = np.random.default_rng(5)
    n_users, n_movies, n = 50, 80, 1200
    keys = np.unique(rng.integers(0, n_users * n_movies, n))
    users, movies = (keys // n_movies).astype(np.int32), (keys % n_movies).astype(np.int32)
    ratings = rng.integers(1, 6, len(keys)).astype(np.float32)
    train = Interactions(users, movies, ratings, n_users, n_movies)
    model = create_model("bias").fit(train)
    seen, asked = train.to_csr(), np.arange(n_users, dtype=np.int32)
    got = shared_order_top_n(model.shared_ranking(), seen, 10, asked)
    want = recommend_top_n(model, seen, 10, user_idx=asked)
    np.testing.assert_array_equal(got.movie_idx, want.movie_idx)


def test_exploration_is_evaluated_as_published_and_its_cost_recorded():
    from recsys_core.serving.explore import ExplorePolicy

    ratings = synth_ratings(n_users=60, n_movies=80, per_user=12, seed=3)
    vocab = fit_vocabulary(ratings)
    split = make_split(ratings, "stratified", seed=0)
    train, test = to_interactions(split.train, vocab), to_interactions(split.test, vocab)
    model = create_model("popularity").fit(train)
    plain = evaluate_model(model, train, test, k=5)
    explored = evaluate_model(model, train, test, k=5, explore=ExplorePolicy(2, 30, seed=0))
    assert "explore" not in plain
    record = explored["explore"]
    assert record["slots"] == 2 and record["depth"] == 30
    assert record["ndcg_at_k_ranked"] == pytest.approx(plain["ndcg_at_k"])
    assert record["coverage_ranked"] == pytest.approx(plain["coverage"])
    # popularity shows everyone the same five movies; two explored slots spread the lists out
    assert explored["coverage"] > 2 * plain["coverage"]
