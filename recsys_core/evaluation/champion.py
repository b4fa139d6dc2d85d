"""Champion/challenger on tonight's data: the published model re-scored next to tonight's candidate.

Figures the champion earned on another night's data say nothing about tonight: the data may have
changed a lot. And the champion was refit on every rating before its own cutoff, so on tonight's
test split it has seen most of the answers. The comparison is therefore made on the test ratings
neither model has seen, under the same conditions for both:

* relevant: tonight's test ratings at or after the champion's cutoff ("fresh"), for users and
  movies the champion knows;
* seen mask, the same for both: every rating of tonight except the fresh ones (the champion saw
  the older test ratings, the candidate did not; neither may recommend them);
* candidates, the same for both: the champion's movies (a movie new since its night cannot be
  ranked by it, so the candidate may not spend a slot on one either).

One difference stays and is stated: the candidate is trained on tonight's training part, the
champion on all of its night's ratings; that errs on the side of keeping the champion.

With too few fresh users behind one champion (a re-run of the same night, a quiet day), older
published nights are tried, newest first: the gate compares with the newest champion that has
enough evidence, or, with none, falls back to the baselines and says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_core.errors import ModelError
from recsys_core.evaluation.evaluate import METRIC_KEYS
from recsys_core.evaluation.metrics import catalogue_coverage, mae, ranking_metrics, rmse
from recsys_core.models.base import Recommender
from recsys_core.models.registry import load_model
from recsys_core.prep.encoding import IdVocabulary
from recsys_core.serving.topn import recommend_top_n

log = logging.getLogger(__name__)

# Fewer test users than this and NDCG differences are noise; an older champion is tried instead.
MIN_COMPARISON_USERS = 20


def load_champion(manifest: dict[str, Any]) -> tuple[Recommender, IdVocabulary]:
    """The published model and its vocabulary from the run folder the manifest names."""
    model_dir = Path(manifest.get("run_folder") or "") / "model"
    if not (model_dir / "model.json").is_file() or not (model_dir / "vocabulary.json").is_file():
        raise ModelError(
            f"The published run {manifest.get('run_id')} has no saved model at {model_dir} (pruned or moved?)."
        )
    return load_model(model_dir), IdVocabulary.load(model_dir / "vocabulary.json")


def load_vocabulary(manifest: dict[str, Any]) -> IdVocabulary | None:
    if not manifest.get("run_folder"):
        return None
    path = Path(manifest["run_folder"]) / "model" / "vocabulary.json"
    try:
        return IdVocabulary.load(path)
    except ModelError:
        return None


def known_to(frame: pd.DataFrame, vocab: IdVocabulary) -> pd.DataFrame:
    """Rows whose user and movie the vocabulary holds."""
    return frame[frame["user_id"].isin(vocab.user_ids) & frame["movie_id"].isin(vocab.movie_ids)]


def fresh_test(test: pd.DataFrame, champion: dict[str, Any], vocab: IdVocabulary) -> pd.DataFrame:
    """Tonight's test ratings the champion has not seen (at/after its cutoff), for its users and movies."""
    fresh = test[test["timestamp"].to_numpy() >= int(champion["cutoff_ts"])]
    return known_to(fresh, vocab)


def mask_matrix(
    seen: pd.DataFrame, vocab: IdVocabulary, users: np.ndarray, extra_movies: np.ndarray | None = None
) -> sp.csr_matrix:
    """Users x movies in ``vocab``'s indices: the seen pairs, plus, for ``users`` (the ones ranked),
    whole columns that may not be ranked."""
    rows, cols = vocab.encode_users(seen["user_id"]), vocab.encode_movies(seen["movie_id"])
    mask = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(vocab.n_users, vocab.n_movies), dtype=np.float32
    )
    if extra_movies is not None and len(extra_movies):
        cols_extra = np.tile(extra_movies, len(users))
        rows_extra = np.repeat(users, len(extra_movies))
        mask = mask + sp.csr_matrix(
            (np.ones(len(rows_extra), np.float32), (rows_extra, cols_extra)), shape=mask.shape, dtype=np.float32
        )
    mask.sum_duplicates()
    return mask.tocsr()


def score_on(
    model: Recommender,
    vocab: IdVocabulary,
    fresh: pd.DataFrame,
    seen: pd.DataFrame,
    k: int,
    excluded_movies: np.ndarray | None = None,
) -> dict[str, Any]:
    """RMSE/MAE on the fresh pairs and top-k metrics over the allowed, unseen movies."""
    users, movies = vocab.encode_users(fresh["user_id"]), vocab.encode_movies(fresh["movie_id"])
    out: dict[str, Any] = {key: None for key in METRIC_KEYS}
    if model.predicts_ratings:
        pred = model.predict(users, movies)
        truth = fresh["rating"].to_numpy(np.float32)
        out["rmse"], out["mae"] = rmse(truth, pred), mae(truth, pred)
    if model.ranks:
        unique = np.unique(users)
        top = recommend_top_n(model, mask_matrix(seen, vocab, unique, excluded_movies), k, user_idx=unique)
        relevant = sp.csr_matrix(
            (np.ones(len(users), np.float32), (users, movies)), shape=(vocab.n_users, vocab.n_movies)
        )
        out.update(ranking_metrics(top.movie_idx, unique, relevant, k))
        out["coverage"] = catalogue_coverage(top.movie_idx, vocab.n_movies)
    return out


def not_comparable(reason: str, champion: dict[str, Any], users: int = 0, *, broken: bool = False) -> dict[str, Any]:
    """``broken``: the champion could not be loaded or scored (worth a warning, not a search)."""
    return {
        "comparable": False,
        "broken": broken,
        "reason": reason,
        "champion_run_id": champion.get("run_id"),
        "champion_as_of": champion.get("as_of"),
        "users": users,
    }


def compare_with_champion(
    candidate: Recommender,
    ratings: pd.DataFrame,
    test: pd.DataFrame,
    vocab: IdVocabulary,
    champion_manifest: dict[str, Any],
    *,
    k: int,
    min_users: int = MIN_COMPARISON_USERS,
) -> dict[str, Any]:
    """Candidate and one champion on the fresh test ratings (see the module doc).

    ``ratings`` are all of tonight's ratings, ``test`` tonight's test part. Any failure to load
    or score the champion makes it "not comparable" (with the reason): a broken old model must
    not stop every later night.
    """
    if champion_manifest.get("cutoff_ts") is None:
        return not_comparable("the published run predates nights (no cutoff recorded)", champion_manifest)
    champion_vocab = load_vocabulary(champion_manifest)
    if champion_vocab is None:
        return not_comparable("its vocabulary could not be read (pruned or moved?)", champion_manifest)
    fresh = fresh_test(test, champion_manifest, champion_vocab)
    users = int(fresh["user_id"].nunique())
    if users < min_users:
        return not_comparable(
            f"only {users} test users rated after its cutoff (at least {min_users} are needed)",
            champion_manifest,
            users,
        )
    keys = ["user_id", "movie_id"]
    seen = ratings[keys].merge(fresh[keys], on=keys, how="left", indicator=True)
    seen = seen.loc[seen["_merge"] == "left_only", keys]
    new_movies = np.setdiff1d(vocab.movie_ids, champion_vocab.movie_ids)
    try:
        champion, _ = load_champion(champion_manifest)
        theirs = score_on(champion, champion_vocab, fresh, known_to(seen, champion_vocab), k)
    except Exception as exc:  # noqa: BLE001 - any broken old model: compare with the baselines instead
        log.warning("champion %s could not be loaded or scored", champion_manifest.get("run_id"), exc_info=True)
        return not_comparable(
            f"its model could not be loaded or scored ({type(exc).__name__}: {exc})", champion_manifest, broken=True
        )
    ours = score_on(candidate, vocab, fresh, seen, k, vocab.encode_movies(new_movies))
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


def compare_with_champions(
    candidate: Recommender,
    ratings: pd.DataFrame,
    test: pd.DataFrame,
    vocab: IdVocabulary,
    champions: list[dict[str, Any]],
    *,
    k: int,
    min_users: int = MIN_COMPARISON_USERS,
) -> dict[str, Any] | None:
    """The comparison with the newest champion that has enough fresh test users (None without any).

    When none has, the newest champion's "not comparable" result is returned, naming what was tried.
    """
    tried: list[str] = []
    first: dict[str, Any] | None = None
    for manifest in champions:
        result = compare_with_champion(candidate, ratings, test, vocab, manifest, k=k, min_users=min_users)
        if result["comparable"]:
            if tried:
                result["skipped"] = tried
            return result
        first = first or result
        tried.append(f"{manifest.get('as_of')}: {result['reason']}")
        if result.get("broken"):  # a scoring problem, not too little evidence: say so, do not search on
            return result if len(tried) == 1 else {**result, "reason": "; ".join(tried)}
    if first is not None and len(tried) > 1:
        first["reason"] = "no published night had enough evidence (" + "; ".join(tried) + ")"
    return first
