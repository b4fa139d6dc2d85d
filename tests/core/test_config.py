"""The configuration's resolved exploration policy and the table fingerprint built from it."""

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
