"""The configuration: the resolved exploration policy, the trend switch, and the table fingerprint."""

from __future__ import annotations

from recsys_core.config import NightlyConfig


def test_default_explore_depth_is_capped_for_long_lists() -> None:
    assert NightlyConfig(top_n=10).explore.depth == 200
    assert NightlyConfig(top_n=5).explore.depth == 100
    assert NightlyConfig(top_n=50).explore.depth == 200, "20 x 50 candidates per user is uncapped"
    assert NightlyConfig(top_n=300).explore.depth == 600
    assert NightlyConfig(top_n=50, explore_depth=1000).explore.depth == 1000, "an explicit depth is kept"


def test_table_fingerprint_follows_the_resolved_exploration() -> None:
    default = NightlyConfig(top_n=10).table_fingerprint()
    assert NightlyConfig(top_n=10, explore_slots=9, explore_depth=200).table_fingerprint() == default
    assert NightlyConfig(top_n=10, explore_slots=3).table_fingerprint() != default
    assert NightlyConfig(top_n=10, explore_coverage=0.2).table_fingerprint() != default
    off = NightlyConfig(top_n=10, explore_slots=0).table_fingerprint()
    assert off != default
    # with exploration off, depth and goal shape nothing
    assert NightlyConfig(top_n=10, explore_slots=0, explore_depth=50, explore_coverage=0.5).table_fingerprint() == off


def test_top_one_lists_take_any_depth() -> None:
    assert not NightlyConfig(top_n=1, explore_depth=1).explore.active


def test_the_trend_is_on_by_default_and_shapes_the_table(monkeypatch) -> None:
    from recsys_core.config import load_config
    from recsys_core.errors import ConfigError

    assert NightlyConfig().trend
    assert NightlyConfig(trend=False).table_fingerprint() != NightlyConfig().table_fingerprint()

    assert load_config(check_paths=False, trend=False).trend is False  # the --no-trend flag
    monkeypatch.setenv("RECSYS_TREND", "0")
    assert load_config(check_paths=False).trend is False
    assert load_config(check_paths=False, trend=True).trend is True  # a flag beats the environment
    monkeypatch.setenv("RECSYS_TREND", "maybe")
    try:
        load_config(check_paths=False)
    except ConfigError as exc:
        assert "RECSYS_TREND" in str(exc) and "--trend/--no-trend" in str(exc)
    else:  # pragma: no cover - the assertion below names the failure
        raise AssertionError("RECSYS_TREND=maybe was accepted")


def test_table_fingerprint_follows_the_trends_grids(monkeypatch) -> None:
    from recsys_core.serving import trend

    on, off = NightlyConfig().table_fingerprint(), NightlyConfig(trend=False).table_fingerprint()
    monkeypatch.setattr(trend, "TREND_NEWNESS", (0.0,))  # the grids of the release before newness
    assert NightlyConfig().table_fingerprint() != on
    assert NightlyConfig(trend=False).table_fingerprint() == off  # no trend: its grids change nothing
