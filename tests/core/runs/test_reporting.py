"""Plots are real PNGs, report.html links only images that exist, markdown has every section."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from recsys_core.runs.report import (
    RunReport,
    collect_run_metrics,
    count_ratings,
    plot_metrics_over_runs,
    plot_rating_distribution,
    plot_score_distribution,
    plot_training_history,
    render_markdown,
    write_plots,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def write_metrics(data_dir: Path, run_id: str, rmse: float) -> None:
    folder = data_dir / "runs" / run_id
    folder.mkdir(parents=True)
    payload = {"model": "biased_mf@v1", "split": "random", "metrics": {"rmse": rmse, "ndcg_at_k": 0.1, "k": 10}}
    (folder / "metrics.json").write_text(json.dumps(payload))


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def test_each_plot_writes_a_png(tmp_path: Path) -> None:
    assert is_png(plot_training_history({"loss": [3, 2, 1.5], "val_loss": [3.1, 2.4, 2.2]}, tmp_path / "h.png"))
    assert is_png(
        plot_rating_distribution(
            count_ratings(pd.Series([1, 2, 2, 3, 4, 4, 4, 5], dtype="float32")), tmp_path / "r.png"
        )
    )
    table = pd.DataFrame({"score": [0.9, 0.8, 0.7, 0.6], "rank": [1, 2, 1, 2]})
    assert is_png(plot_score_distribution(table, tmp_path / "s.png"))
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "rmse": [1.0, 0.95, 0.97], "ndcg_at_k": [0.1, 0.12, None]})
    assert is_png(plot_metrics_over_runs(runs, tmp_path / "m.png"))


def test_plots_without_data_are_skipped_not_faked(tmp_path: Path) -> None:
    assert plot_training_history({}, tmp_path / "h.png") is None
    assert plot_rating_distribution(count_ratings(pd.Series([], dtype="float32")), tmp_path / "r.png") is None
    assert plot_score_distribution(pd.DataFrame({"score": []}), tmp_path / "s.png") is None
    assert plot_metrics_over_runs(pd.DataFrame(), tmp_path / "m.png") is None
    assert not list(tmp_path.iterdir())


def test_collect_run_metrics_reads_run_folders_in_order_and_skips_broken(tmp_path: Path) -> None:
    write_metrics(tmp_path, "20260102T030000Z-bbbbbb", 0.95)
    write_metrics(tmp_path, "20260101T030000Z-aaaaaa", 1.0)
    broken = tmp_path / "runs" / "20260103T030000Z-cccccc"
    broken.mkdir()
    (broken / "metrics.json").write_text("{not json")
    (tmp_path / "runs" / "20260104T030000Z-dddddd").mkdir()  # a run that died before evaluate
    frame = collect_run_metrics(tmp_path)
    assert frame["run_id"].tolist() == ["20260101T030000Z-aaaaaa", "20260102T030000Z-bbbbbb"]
    assert frame["rmse"].tolist() == [1.0, 0.95]
    assert collect_run_metrics(tmp_path, limit=1)["run_id"].tolist() == ["20260102T030000Z-bbbbbb"]
    assert collect_run_metrics(tmp_path / "nowhere").empty


def test_report_html_shows_every_plot_from_the_run_folder(tmp_path: Path) -> None:
    write_metrics(tmp_path, "20260101T030000Z-aaaaaa", 1.0)
    write_metrics(tmp_path, "20260102T030000Z-bbbbbb", 0.9)
    run_folder = tmp_path / "runs" / "20260102T030000Z-bbbbbb"
    report = RunReport(
        run_id=run_folder.name,
        dataset="ml-100k",
        model="biased_mf@v1",
        split="random",
        counts={"raw ratings": 8},
        history={"loss": [2.0, 1.0]},
        metrics={"rmse": 0.9, "ndcg_at_k": 0.1},
        baselines={"popularity": {"ndcg_at_k": 0.08}},
        timings=[{"stage": "train-abc", "seconds": 1.25, "state": "Completed"}],
        links={"Data Docs (validation)": "validation.html", "table": str(tmp_path / "t")},
    )
    report.plots = write_plots(
        run_folder,
        history=report.history,
        rating_counts=count_ratings(pd.Series([1.0, 4.0, 5.0])),
        table=pd.DataFrame({"score": [0.5, 0.4], "rank": [1, 2]}),
        past_metrics=collect_run_metrics(tmp_path),
    )
    assert len(report.plots) == 4
    html_path = write_report(run_folder, report)
    parser = _Images()
    parser.feed(html_path.read_text())
    assert sorted(parser.srcs) == sorted(report.plots.values())
    for src in parser.srcs:  # relative links resolve next to report.html: the page renders
        assert not Path(src).is_absolute() and is_png(html_path.parent / src)
    text = html_path.read_text()
    assert "Timings per stage" in text and "1.2" in text and 'href="validation.html"' in text
    assert (tmp_path / "t").as_uri() in text


def test_markdown_report_has_every_section() -> None:
    report = RunReport(
        run_id="r1",
        dataset="ml-100k",
        model="m@v1",
        split="u1",
        counts={"raw ratings": 100_000, "rejected ratings": 2},
        reject_reasons={"rating off the scale": 2},
        validation=[{"suite": "ratings", "rows": 100_000, "success": True, "failed": []}],
        history={"loss": [2.0, 1.5, 1.6]},
        metrics={"rmse": 0.93},
        baselines={"bias": {"rmse": 0.95}},
        timings=[{"stage": "train-1", "seconds": 20.0, "state": "Completed"}],
        table_path="/d/recommendations/dt=2026-01-01/run_id=r1",
        manifest_path="/d/recommendations/_latest.json",
    )
    md = render_markdown(report)
    for part in (
        "## Data",
        "100,000",
        "rating off the scale",
        "## Validation",
        "## Metrics",
        "0.9300",
        "baseline: bias",
        "## Training history",
        "| model: loss (train) | 3 | 2.0000 | 1.5000 | 1.6000 |",
        "## Timings per stage",
        "| train-1 | 20.0 |",
        "run_id=r1",
        "_latest.json",
    ):
        assert part in md, part


def test_history_keys_pair_validation_with_training_curves(tmp_path):
    from recsys_core.runs.history import split_key
    from recsys_core.runs.report import plot_training_history

    assert split_key("val_rmse") == ("", "rmse", True)
    assert split_key("rater_m1_dot_bias_val_rmse") == ("rater_m1_dot_bias", "rmse", True)
    assert split_key("rater_m1_dot_bias_rmse") == ("rater_m1_dot_bias", "rmse", False)
    assert split_key("loss") == ("", "loss", False)
    history = {f"part{i}_loss": [1.0, 0.5] for i in range(6)} | {f"part{i}_val_loss": [1.1, 0.7] for i in range(6)}
    assert plot_training_history(history, tmp_path / "h.png").stat().st_size > 0


def test_online_metrics_over_nights_are_collected_plotted_and_rendered(tmp_path: Path) -> None:
    from recsys_core.publishing.nights import point_night
    from recsys_core.runs.report import (
        RunReport,
        collect_online_metrics,
        plot_online_over_nights,
        render_html,
        render_markdown,
    )

    def online(prev: str, ndcg: float) -> dict:
        popular = {"ndcg_at_k": ndcg / 2, "hit_rate_at_k": 0.1, "users": 7}
        return {
            "previous_as_of": prev,
            "users": 7,
            "ndcg_at_k": ndcg,
            "hit_rate_at_k": 0.4,
            "baselines": {"popularity": popular},
        }

    point_night(tmp_path, {"as_of": "2024-01-01", "run_id": "a", "online_metrics": None})
    point_night(tmp_path, {"as_of": "2024-01-08", "run_id": "b", "online_metrics": online("2024-01-01", 0.2)})
    point_night(tmp_path, {"as_of": "2024-01-15", "run_id": "c", "online_metrics": online("2024-01-08", 0.3)})
    frame = collect_online_metrics(tmp_path)
    assert frame["night"].tolist() == ["2024-01-08", "2024-01-15"]  # a first night has nothing to score
    assert frame["popularity ndcg"].tolist() == [0.1, 0.15]
    assert plot_online_over_nights(frame, tmp_path / "p.png").stat().st_size > 1000
    assert plot_online_over_nights(frame.iloc[:0], tmp_path / "q.png") is None
    report = RunReport("r", "ml-100k", "m", "random", online=frame.to_dict("records"))
    assert "| 2024-01-15 | 2024-01-08 | 7 | 0.3000 | 0.4000 | 0.1500 | 0.1000 |" in render_markdown(report)
    assert "Yesterday's lists against the next ratings" in render_html(report)
