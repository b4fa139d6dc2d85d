"""benchmarks.nightly's bookkeeping on recorded runs (the benchmark itself runs `recsys run`)."""

from benchmarks.nightly import render_markdown, stage_name, summarise


def test_stage_names_drop_prefects_suffix_and_medians_are_per_stage():
    assert stage_name("train-1a2") == "train" and stage_name("refit-all-0fd") == "refit-all"
    assert stage_name("score-previous-night-9dc") == "score-previous-night"
    runs = [
        {"wall_s": 10.0, "stages": {"train-aaa": 4.0, "train-bbb": 2.0, "publish-ccc": 1.0}},
        {"wall_s": 30.0, "stages": {"train-ddd": 8.0, "publish-eee": 3.0}},
        {"wall_s": 20.0, "stages": {"train-fff": 7.0, "publish-ggg": 2.0}},
    ]
    got = summarise(runs)
    assert got["wall_s"] == 20.0 and got["stages"] == {"train": 7.0, "publish": 2.0}
    assert got["stages_total_s"] == 9.0


def test_markdown_reports_the_ratios_and_every_stage():
    trained = {"wall_s": 80.0, "walls": [80.0], "stages": {"train": 60.0, "publish": 1.0}, "stages_total_s": 61.0}
    reused = {"wall_s": 20.0, "walls": [20.0], "stages": {"reuse-model": 0.5, "publish": 1.0}, "stages_total_s": 1.5}
    text = render_markdown({"retrained": trained, "reused": reused}, "python -m benchmarks.nightly", 1)
    assert "| wall / retrained | 1.00x | 0.25x |" in text
    assert "| train | 60.0 | - |" in text and "| reuse-model | - | 0.5 |" in text
