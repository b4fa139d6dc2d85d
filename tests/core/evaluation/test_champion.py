"""The champion is re-scored on tonight's test ratings that neither model has seen, like for like."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.evaluation.champion import compare_with_champion, compare_with_champions, mask_matrix
from recsys_core.models import create_model
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions

CUT = 1_000_000


def ratings(n_users: int = 40, per_user: int = 10, seed: int = 0, n_movies: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i, m in enumerate(rng.choice(np.arange(1, n_movies + 1), per_user, replace=False)):
            ts = CUT - 1000 + i * 10 if i < per_user - 2 else CUT + i  # each user's last two are after CUT
            rows.append((u, int(m), float(1 + (u + m) % 5), ts))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def publish_champion(past: pd.DataFrame, folder: Path, name: str = "bias", as_of: str = "x") -> dict:
    vocab = fit_vocabulary(past)
    model = create_model(name).fit(to_interactions(past, vocab))
    model.save(folder / "model")
    vocab.save(folder / "model" / "vocabulary.json")
    return {"run_id": f"champ-{as_of}", "as_of": as_of, "cutoff_ts": CUT, "run_folder": str(folder)}


def tonight_test(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby("user_id").tail(3)  # the two new ratings and one the champion saw


def fitted(frame: pd.DataFrame, test: pd.DataFrame, name: str = "bias"):
    vocab = fit_vocabulary(frame)
    return create_model(name).fit(to_interactions(frame.drop(test.index), vocab)), vocab


def test_compares_on_unseen_test_ratings_only(tmp_path):
    frame = ratings()
    champion = publish_champion(frame[frame.timestamp < CUT], tmp_path)
    test = tonight_test(frame)
    candidate, vocab = fitted(frame, test)
    got = compare_with_champion(candidate, frame, test, vocab, champion, k=5)
    assert got["comparable"] and got["users"] == 40 and got["ratings"] == 80
    assert got["candidate"]["rmse"] is not None and got["champion"]["rmse"] is not None
    assert got["champion_run_id"] == "champ-x"


def test_both_models_rank_the_same_movies_with_the_same_seen_mask(tmp_path):
    """A movie new since the champion's night may not take a slot of the candidate's list; the same
    champion model re-saved as the candidate scores identically."""
    frame = ratings(n_movies=30)
    new_movie = pd.DataFrame({"user_id": [1], "movie_id": [999], "rating": [5.0], "timestamp": [CUT + 1]})
    past = frame[frame.timestamp < CUT]
    champion = publish_champion(past, tmp_path, name="popularity")
    tonight = pd.concat([frame, new_movie], ignore_index=True)
    test = tonight_test(frame)
    vocab = fit_vocabulary(tonight)
    same_as_champion = create_model("popularity").fit(to_interactions(past, vocab))
    # make the new movie the most "popular" for the candidate: it must still never be ranked
    boosted = pd.concat([past] + [new_movie.assign(user_id=u) for u in range(1, 41)], ignore_index=True)
    candidate = create_model("popularity").fit(to_interactions(boosted, vocab))
    plain = compare_with_champion(same_as_champion, tonight, test, vocab, champion, k=5)
    assert plain["candidate"]["ndcg_at_k"] == pytest.approx(plain["champion"]["ndcg_at_k"])
    boosted_result = compare_with_champion(candidate, tonight, test, vocab, champion, k=5)
    assert boosted_result["candidate"]["ndcg_at_k"] == pytest.approx(plain["champion"]["ndcg_at_k"])


def test_extra_movies_are_masked_only_for_the_ranked_users():
    frame = ratings(n_users=5)
    vocab = fit_vocabulary(frame)
    mask = mask_matrix(frame.head(3), vocab, np.array([0, 1]), np.array([4, 5]))
    assert mask.nnz == 3 + 4 and set(mask[2].indices) == set()


def test_a_broken_or_missing_champion_is_not_comparable_and_never_raises(tmp_path):
    frame = ratings()
    champion = publish_champion(frame[frame.timestamp < CUT], tmp_path)
    test = tonight_test(frame)
    candidate, vocab = fitted(frame, test)
    few = compare_with_champion(candidate, frame, test, vocab, champion, k=5, min_users=41)
    assert not few["comparable"] and "only 40 test users" in few["reason"]
    old = compare_with_champion(candidate, frame, test, vocab, {**champion, "cutoff_ts": None}, k=5)
    assert not old["comparable"] and "predates nights" in old["reason"]
    gone = compare_with_champion(candidate, frame, test, vocab, {**champion, "run_folder": str(tmp_path / "x")}, k=5)
    assert not gone["comparable"] and "vocabulary could not be read" in gone["reason"]
    meta = tmp_path / "model" / "model.json"
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "n_users"}))
    broken = compare_with_champion(candidate, frame, test, vocab, champion, k=5)
    assert not broken["comparable"] and "could not be loaded or scored" in broken["reason"]


def test_the_newest_champion_with_enough_evidence_is_used(tmp_path):
    frame = ratings()
    past = frame[frame.timestamp < CUT]
    older = publish_champion(past, tmp_path / "older", as_of="1998-01-01")
    newest = {**publish_champion(past, tmp_path / "newest", as_of="1998-01-08"), "cutoff_ts": CUT + 100}
    test = tonight_test(frame)
    candidate, vocab = fitted(frame, test)
    got = compare_with_champions(candidate, frame, test, vocab, [newest, older], k=5)
    assert got["comparable"] and got["champion_as_of"] == "1998-01-01"
    assert "1998-01-08: only 0 test users" in got["skipped"][0]
    none = compare_with_champions(candidate, frame, test, vocab, [newest, newest], k=5)
    assert not none["comparable"] and "no published night had enough evidence" in none["reason"]
    assert compare_with_champions(candidate, frame, test, vocab, [], k=5) is None
