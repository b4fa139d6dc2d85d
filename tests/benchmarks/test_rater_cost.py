"""benchmarks.rater_cost: reference members are checked before training; the table shows the ratio."""

from __future__ import annotations

import pytest

from benchmarks.rater_cost import main, render


@pytest.mark.parametrize(("members", "says"), [("autorec,nope", "'nope'"), ("autorec,ease", "predicts no ratings")])
def test_a_bad_reference_member_is_a_usage_error(members: str, says: str, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--reference", members, "--datasets", str(tmp_path), "--output", str(tmp_path / "out.md")])
    err = capsys.readouterr().err
    assert "--reference" in err and says in err
    assert not (tmp_path / "out.md").exists()


def test_render_reports_medians_ratio_and_every_run() -> None:
    result = {
        "u1": {
            "seconds": {"default": [30.0, 29.0, 31.0], "reference": [20.0, 21.0, 19.0]},
            "median": {"default": 30.0, "reference": 20.0},
            "ratio": 1.5,
            "rmse": {"default": 0.8887, "reference": 0.8970},
        }
    }
    text = render(result, ("ease", ["autorec", "dot_bias", "hybrid_mf"]), 3, 0)
    assert "| u1 | 30.0 | 20.0 | 1.50 | 0.8887 | 0.8970 | [30.0, 29.0, 31.0] / [20.0, 21.0, 19.0] |" in text
    assert "autorec,dot_bias,hybrid_mf" in text and "bayes_fm(n_iter=100)" in text
    assert "default ranker `session_ease`" in text and "reference ranker `ease`" in text


@pytest.mark.parametrize("ranker", ["nope", "global_mean", "combined"])
def test_a_bad_reference_ranker_is_a_usage_error(ranker: str, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--reference-ranker", ranker, "--datasets", str(tmp_path), "--output", str(tmp_path / "out.md")])
    assert "--reference-ranker" in capsys.readouterr().err
    assert not (tmp_path / "out.md").exists()
