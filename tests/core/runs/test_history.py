"""Training histories as people read them: names, directions, the chosen epoch or lambda."""

from __future__ import annotations

from recsys_core.runs.history import build_panels, metric_direction, readable_owner, summarise_history


def test_best_follows_the_metric_direction():
    history = {"ranker_lambda": [10.0, 100.0, 1000.0], "ranker_val_ndcg": [0.30, 0.36, 0.33], "val_loss": [3, 1, 2]}
    rows = {name: (points, first, best, last) for name, points, first, best, last in summarise_history(history)}
    assert rows["ranking model: ndcg (validation)"] == (3, 0.30, 0.36, 0.33)  # max, not min
    assert rows["model: loss (validation)"] == (3, 3, 1, 2)  # min
    assert metric_direction("recall") == 1 and metric_direction("rmse") == -1


def test_a_lambda_search_is_plotted_against_lambda_and_marks_the_choice():
    [panel] = build_panels({"ranker_lambda": [10.0, 100.0, 1000.0], "ranker_val_ndcg": [0.30, 0.36, 0.33]})
    assert panel.x == [10.0, 100.0, 1000.0] and panel.x_label.startswith("lambda")
    assert panel.chosen == (100.0, 0.36)


def test_early_stopping_marks_the_best_epoch_and_pairs_curves():
    [panel] = build_panels({"rater_m0_autorec_loss": [1.0, 0.8, 0.7], "rater_m0_autorec_val_loss": [1.1, 0.9, 0.95]})
    assert panel.title == "rating model, member 1 (autorec): loss"
    assert set(panel.curves) == {"train", "validation"} and panel.x_label == "epoch"
    assert panel.chosen == (2.0, 0.9)


def test_member_names_are_readable():
    assert readable_owner("rater_m2_hybrid_mf") == "rating model, member 3 (hybrid_mf)"
    assert readable_owner("") == "model"
    assert readable_owner("ranker") == "ranking model"
