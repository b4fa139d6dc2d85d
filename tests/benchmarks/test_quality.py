"""benchmarks.quality: ``--refit`` scores the published model (the candidate refit on every training rating)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.quality import load_slice, main, render_table, run_model
from tests.builders import build_ml100k_zip, synth_ratings


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    # 60 ratings a user, so the 5% validation slice holds some of each user's training ratings
    build_ml100k_zip(tmp_path / "ml-100k.zip", synth_ratings(n_users=30, n_movies=80, per_user=60), n_movies=80)
    return tmp_path


def test_the_published_model_also_learns_from_the_validation_slice(datasets: Path) -> None:
    fold = load_slice(datasets, "u1", 0, {})
    candidate, _ = run_model("bias", fold, 0)
    published, _ = run_model("bias", fold, 0, refit_mode="fixed")
    again, _ = run_model("bias", fold, 0)
    assert again["rmse"] == candidate["rmse"]  # the candidate is deterministic, so a change is the refit's
    assert published["rmse"] != candidate["rmse"]  # the refit saw the 5% slice the candidate held out
    assert published["refit_mode"] == "fixed" and "refit_mode" not in candidate


def test_the_command_marks_published_rows_with_the_mode_the_refit_used(datasets: Path) -> None:
    out = datasets / "out"
    common = ["--models", "bias,mf", "--slices", "u1", "--seeds", "0", "--datasets", str(datasets)]
    main([*common, "--output", str(out / "plain.md"), "--json", str(datasets / "plain.json")])
    main([*common, "--refit", "fixed", "--output", str(out / "published.md"), "--json", str(datasets / "pub.json")])
    plain = {r["model"]: r for r in json.loads((datasets / "plain.json").read_text())}
    published = {r["model"]: r for r in json.loads((datasets / "pub.json").read_text())}
    text = (out / "published.md").read_text()
    assert "| bias *(published: fixed refit)* |" in text and "Rows marked *published*" in text
    # mf cannot fix its epochs, so its refit searches again, and its row says so
    assert "| mf *(published: search refit)* |" in text
    assert published["bias"]["u1_rmse"] != plain["bias"]["u1_rmse"]
    assert "*(published" not in (out / "plain.md").read_text() and "Rows marked" not in (out / "plain.md").read_text()


def test_published_rows_are_marked_and_the_protocol_says_what_they_are(tmp_path: Path) -> None:
    row = {"model": "combined", "kind": "rating+ranking", "seeds": [0], "runs": {}, "u1_rmse": 0.8885}
    plain = render_table([row], tmp_path, [0], ["u1"])
    published = render_table([{**row, "refit_mode": "warm"}], tmp_path, [0], ["u1"])
    assert "Rows marked *published*" not in plain and "published:" not in plain
    assert "| combined *(published: warm refit)* | rating+ranking | 1 | 0.8885 |" in published
    assert "refit on the slice's whole training part" in published


def test_an_unknown_refit_mode_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--models", "bias", "--refit", "later", "--datasets", str(tmp_path), "--output", str(tmp_path / "q.md")])
    assert "invalid choice: 'later'" in capsys.readouterr().err
    assert not (tmp_path / "q.md").exists()


def test_params_override_a_models_own_and_its_row_says_so(datasets: Path) -> None:
    common = ["--models", "ease", "--slices", "ua", "--seeds", "0", "--datasets", str(datasets)]
    main([*common, "--output", str(datasets / "plain.md"), "--json", str(datasets / "plain.json")])
    params = '{"ease": {"lambdas": [1.0]}}'
    main([*common, "--params", params, "--output", str(datasets / "p.md"), "--json", str(datasets / "p.json")])
    plain, tuned = (json.loads((datasets / f).read_text())[0] for f in ("plain.json", "p.json"))
    assert tuned["params"] == {"lambdas": [1.0]} and "params" not in plain
    assert tuned["ua_ndcg_at_k"] != plain["ua_ndcg_at_k"]  # lambda 1 is not the grid's choice
    assert '| ease *(params {"lambdas":[1.0]})* |' in (datasets / "p.md").read_text()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{not json", "--params is not JSON"),
        ("[1]", "--params must be a JSON object"),
        ('{"ease": 3}', "--params must be a JSON object"),
        ('{"mf": {}}', "--params names models not in --models: ['mf']"),
    ],
)
def test_bad_params_are_a_usage_error(tmp_path: Path, params: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--models", "ease", "--params", params, "--datasets", str(tmp_path), "--output", str(tmp_path / "q.md")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "q.md").exists()
