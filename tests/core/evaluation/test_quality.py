from recsys_core.evaluation.gate import decide_publish

BASE = {"popularity": {"ndcg_at_k": 0.2}}


def test_must_beat_popularity():
    assert decide_publish({"ndcg_at_k": 0.25, "k": 10}, BASE, None).passed
    d = decide_publish({"ndcg_at_k": 0.15, "k": 10}, BASE, None)
    assert not d.passed and "popularity" in d.reasons[0]


def test_champion_margin():
    prev = {"metrics": {"ndcg_at_k": 0.30, "rmse": 0.90, "k": 10}}
    assert decide_publish({"ndcg_at_k": 0.29, "rmse": 0.91, "k": 10}, BASE, prev).passed
    d = decide_publish({"ndcg_at_k": 0.25, "rmse": 0.99, "k": 10}, BASE, prev)
    assert not d.passed and len(d.reasons) == 2


def test_incomparable_champion_ignored():
    prev = {"metrics": {"ndcg_at_k": 0.9, "k": 20}}
    assert decide_publish({"ndcg_at_k": 0.25, "k": 10}, BASE, prev).passed
