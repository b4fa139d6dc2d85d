"""The champion is re-scored on tonight's test ratings that neither model has seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.evaluation.champion import compare_with_champion
from recsys_core.models import create_model
from recsys_core.prep.encoding import fit_vocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import Split

CUT = 1_000_000


def ratings(n_users: int = 40, per_user: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i, m in enumerate(rng.choice(np.arange(1, 31), per_user, replace=False)):
            ts = CUT - 1000 + i * 10 if i < per_user - 2 else CUT + i  # each user's last two are after CUT
            rows.append((u, int(m), float(1 + (u + m) % 5), ts))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


def publish_champion(past: pd.DataFrame, folder: Path) -> dict:
    vocab = fit_vocabulary(past)
    model = create_model("bias").fit(to_interactions(past, vocab))
    model.save(folder / "model")
    vocab.save(folder / "model" / "vocabulary.json")
    return {"run_id": "champ", "as_of": "x", "cutoff_ts": CUT, "run_folder": str(folder), "model": model.label}


def tonight(all_ratings: pd.DataFrame) -> Split:
    test = all_ratings.groupby("user_id").tail(3)  # the two new ratings and one the champion saw
    return Split("random", all_ratings.drop(test.index), test)


def test_compares_on_unseen_test_ratings_only(tmp_path):
    frame = ratings()
    champion = publish_champion(frame[frame.timestamp < CUT], tmp_path)
    split = tonight(frame)
    vocab = fit_vocabulary(frame)
    candidate = create_model("bias").fit(to_interactions(split.train, vocab))
    got = compare_with_champion(candidate, split, vocab, champion, k=5)
    fresh = split.test[split.test.timestamp >= CUT]
    assert got["comparable"] and got["users"] == 40 and got["ratings"] == len(fresh)
    assert got["candidate"]["rmse"] is not None and got["champion"]["rmse"] is not None
    assert got["champion_run_id"] == "champ"


def test_too_few_fresh_users_or_no_cutoff_or_no_model_is_not_comparable(tmp_path):
    frame = ratings()
    champion = publish_champion(frame[frame.timestamp < CUT], tmp_path)
    split, vocab = tonight(frame), fit_vocabulary(frame)
    candidate = create_model("bias").fit(to_interactions(split.train, vocab))
    few = compare_with_champion(candidate, split, vocab, champion, k=5, min_users=41)
    assert not few["comparable"] and "only 40 test users" in few["reason"]
    old = compare_with_champion(candidate, split, vocab, {**champion, "cutoff_ts": None}, k=5)
    assert not old["comparable"] and "predates nights" in old["reason"]
    gone = compare_with_champion(candidate, split, vocab, {**champion, "run_folder": str(tmp_path / "x")}, k=5)
    assert not gone["comparable"] and "could not be loaded" in gone["reason"]
