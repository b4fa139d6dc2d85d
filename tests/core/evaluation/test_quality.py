from recsys_core.evaluation.gate import decide_publish

BASE = {"popularity": {"ndcg_at_k": 0.2}}


def comparison(ndcg: float, rmse: float | None, champ_ndcg: float, champ_rmse: float | None) -> dict:
    return {
        "comparable": True,
        "champion_run_id": "c",
        "champion_as_of": "2024-01-01",
        "users": 50,
        "candidate": {"ndcg_at_k": ndcg, "rmse": rmse},
        "champion": {"ndcg_at_k": champ_ndcg, "rmse": champ_rmse},
    }


def test_must_beat_popularity():
    assert decide_publish({"ndcg_at_k": 0.25, "k": 10}, BASE, None).passed
    d = decide_publish({"ndcg_at_k": 0.15, "k": 10}, BASE, None)
    assert not d.passed and "popularity" in d.reasons[0]


def test_champion_margin_uses_the_rescored_figures_not_tonights_split_metrics():
    metrics = {"ndcg_at_k": 0.9, "rmse": 0.5, "k": 10}  # would pass any comparison with old figures
    assert decide_publish(metrics, BASE, comparison(0.29, 0.91, 0.30, 0.90)).passed
    d = decide_publish(metrics, BASE, comparison(0.25, 0.99, 0.30, 0.90))
    assert not d.passed and len(d.reasons) == 2
    assert "50 test users" in d.reasons[0]


def test_a_night_whose_data_changed_is_not_blocked_by_yesterdays_numbers():
    """The champion earned 0.6 on its own night; re-scored tonight it does worse than the candidate."""
    d = decide_publish({"ndcg_at_k": 0.3, "k": 10}, BASE, comparison(0.31, None, 0.28, None))
    assert d.passed and "0.3100 vs 0.2800" in d.notes[0]


def test_incomparable_champion_is_noted_and_baselines_decide():
    skipped = {"comparable": False, "reason": "only 3 test users", "champion_run_id": "c", "champion_as_of": "x"}
    d = decide_publish({"ndcg_at_k": 0.25, "k": 10}, BASE, skipped)
    assert d.passed and "only 3 test users" in d.notes[0]
    assert not decide_publish({"ndcg_at_k": 0.1, "k": 10}, BASE, skipped).passed


def test_popularity_is_compared_with_the_model_ranking_not_its_explored_lists() -> None:
    explored = {"ndcg_at_k": 0.15, "k": 10, "explore": {"ndcg_at_k_ranked": 0.25}}
    assert decide_publish(explored, BASE, None).passed, "exploration's cost alone must not fail the gate"
    weak = {"ndcg_at_k": 0.25, "k": 10, "explore": {"ndcg_at_k_ranked": 0.15}}
    d = decide_publish(weak, BASE, None)
    assert not d.passed and "0.1500" in d.reasons[0]
