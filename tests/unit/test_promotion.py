"""Promotion decides from the registry's record alone: a version without passed gate tags is
refused whatever alias it carries, and in shadow mode only a passed canary promotes."""

import pytest

from retrain_assets.lib.release.promotion import decide, missing_gates

GATED = {"gate.auc": "passed", "gate.latency": "passed"}


def test_first_champion_needs_only_the_gates() -> None:
    assert decide(None, "1", GATED, "shadow").action == "promote"


@pytest.mark.parametrize(
    ("tags", "mode", "action"),
    [
        (GATED, "none", "promote"),
        (GATED, "shadow", "keep"),
        ({**GATED, "canary": "passed"}, "shadow", "promote"),
        ({**GATED, "canary": "failed"}, "shadow", "drop"),
    ],
)
def test_shadow_mode_waits_for_the_canary(tags, mode, action) -> None:
    decision = decide("1", "2", tags, mode)
    assert decision.action == action and "v2" in decision.reason


@pytest.mark.parametrize(
    "tags", [{}, {"gate.auc": "passed"}, {"gate.auc": "failed", "gate.latency": "passed"}]
)
def test_a_version_without_passed_gates_is_refused(tags) -> None:
    with pytest.raises(ValueError, match="refusing to promote"):
        decide("1", "2", {**tags, "canary": "passed"}, "none")
    assert missing_gates(tags)


def test_nothing_to_do_without_a_challenger() -> None:
    assert decide("3", None, {}, "shadow").action == "keep"
    assert decide("3", "3", GATED, "none").action == "keep"
