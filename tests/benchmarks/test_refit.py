"""benchmarks.refit refuses a fold its model has no metric for, before any data is read."""

from __future__ import annotations

import pytest

from benchmarks.refit import fold_applies, main


def test_folds_follow_what_the_model_produces() -> None:
    assert fold_applies("u1", "combined") and fold_applies("ua", "combined")
    assert not fold_applies("u1", "mult_dae_bag") and fold_applies("ua", "mult_dae_bag")
    assert fold_applies("u1", "global_mean") and not fold_applies("ua", "global_mean")


def test_a_ranker_on_the_rating_fold_is_a_usage_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--model", "mult_dae_bag", "--folds", "u1,ua", "--datasets", str(tmp_path)])
    err = capsys.readouterr().err
    assert "has no predicted ratings" in err and "--folds ua" in err
