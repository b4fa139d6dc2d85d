"""Champion/challenger on tonight's data: the published model re-scored on tonight's test split.

Figures the champion earned on another night's data say nothing about tonight: the data may have
changed a lot. And the champion was refit on every rating before its own cutoff, so on tonight's
test split it has seen most of the answers. The fair comparison is on the test ratings neither
model has seen: tonight's test ratings at or after the champion's cutoff, for users and movies
the champion knows. Both models rank with tonight's training ratings as the seen mask. With too
few such users (a re-run of the same night, a quiet week) the champion is not comparable and the
gate falls back to the baselines, saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_core.errors import ModelError
from recsys_core.evaluation.evaluate import METRIC_KEYS, evaluate_model
from recsys_core.models.base import Recommender
from recsys_core.models.registry import load_model
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.prep.interactions import to_interactions
from recsys_core.prep.splitting import Split

log = logging.getLogger(__name__)

# Fewer test users than this and NDCG differences are noise; the gate then uses the baselines only.
MIN_COMPARISON_USERS = 20


def load_champion(manifest: dict[str, Any]) -> tuple[Recommender, IdVocabulary]:
    """The published model and its vocabulary from the run folder the manifest names."""
    model_dir = Path(manifest.get("run_folder") or "") / "model"
    if not (model_dir / "model.json").is_file() or not (model_dir / "vocabulary.json").is_file():
        raise ModelError(
            f"The published run {manifest.get('run_id')} has no saved model at {model_dir} (pruned or moved?)."
        )
    return load_model(model_dir), IdVocabulary.load(model_dir / "vocabulary.json")


def known_to(frame: pd.DataFrame, vocab: IdVocabulary) -> pd.DataFrame:
    """Rows whose user and movie the vocabulary holds."""
    users = frame["user_id"].isin(vocab.user_ids)
    movies = frame["movie_id"].isin(vocab.movie_ids)
    return frame[users & movies]


def not_comparable(reason: str, champion: dict[str, Any], users: int = 0) -> dict[str, Any]:
    return {
        "comparable": False,
        "reason": reason,
        "champion_run_id": champion.get("run_id"),
        "champion_as_of": champion.get("as_of"),
        "users": users,
    }


def compare_with_champion(
    candidate: Recommender,
    split: Split,
    vocab: IdVocabulary,
    champion_manifest: dict[str, Any],
    *,
    k: int,
    min_users: int = MIN_COMPARISON_USERS,
) -> dict[str, Any]:
    """Candidate and champion metrics on the test ratings neither has seen (see module doc)."""
    cutoff = champion_manifest.get("cutoff_ts")
    if cutoff is None:
        return not_comparable("the published run predates nights (no cutoff recorded)", champion_manifest)
    try:
        champion, champion_vocab = load_champion(champion_manifest)
    except (ModelError, OSError, ValueError) as exc:
        return not_comparable(f"its model could not be loaded: {exc}", champion_manifest)
    fresh = split.test[split.test["timestamp"].to_numpy() >= int(cutoff)]
    fresh = known_to(fresh, champion_vocab)
    users = int(fresh["user_id"].nunique())
    if users < min_users:
        return not_comparable(
            f"only {users} test users rated after its cutoff (at least {min_users} are needed)",
            champion_manifest,
            users,
        )
    ours = evaluate_model(candidate, to_interactions(split.train, vocab), to_interactions(fresh, vocab), k=k)
    seen = known_to(split.train, champion_vocab)
    theirs = evaluate_model(
        champion, to_interactions(seen, champion_vocab), to_interactions(fresh, champion_vocab), k=k
    )
    log.info("champion %s re-scored on %s fresh test users", champion_manifest.get("run_id"), users)
    return {
        "comparable": True,
        "champion_run_id": champion_manifest.get("run_id"),
        "champion_as_of": champion_manifest.get("as_of"),
        "users": users,
        "ratings": len(fresh),
        "k": k,
        "candidate": {m: ours.get(m) for m in METRIC_KEYS},
        "champion": {m: theirs.get(m) for m in METRIC_KEYS},
    }
