"""Real-data model check on ml-100k (skipped when the archive is absent).

The default ``combined`` model takes over a minute to train on two cores, too slow for the
suite, so this trains its fast ranking member, EASE (seconds), on the ua fold and checks it
clearly beats the popularity ranking there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys_core.data.readers import read_release
from recsys_core.evaluation.evaluate import evaluate_model
from recsys_core.models import create_model
from recsys_core.prep.cleaning import clean_ratings
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import holdout_validation, make_split


@pytest.mark.realdata
def test_ease_beats_popularity_on_ua(ml100k_real: Path) -> None:
    release = read_release(ml100k_real, "ml-100k")
    ratings = clean_ratings(release.ratings, release.movies)
    vocab = fit_vocabulary(ratings)
    split = make_split(ratings, "ua", folds=release.folds)
    fit_df, val_df = holdout_validation(split.train, 0.05, seed=0)
    train, test = to_interactions(split.train, vocab), to_interactions(split.test, vocab)
    ease = create_model("ease").fit(to_interactions(fit_df, vocab), to_interactions(val_df, vocab))
    popularity = create_model("popularity").fit(train)
    ndcg = evaluate_model(ease, train, test)["ndcg_at_k"]
    baseline = evaluate_model(popularity, train, test)["ndcg_at_k"]
    assert baseline > 0.1
    assert ndcg > 0.30 > baseline + 0.1
