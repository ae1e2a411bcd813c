"""Tests for the model history helpers (retrain_assets.lib.release.timeline).

Why: the model_history asset is how a person answers "when did the model begin to degrade?".
A wrong day, a false alarm on a merely noisy series, or a chart that silently fails to write
would send them after the wrong retrain, so these tests plant known drops (and non-drops) and
check the estimate, the table, the PNG and that importing the module stays cheap (no matplotlib).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.release.timeline import (
    COLUMNS,
    degradation_start,
    history_frame,
    plot_png,
    to_markdown,
)

START = date(2024, 3, 1)


def _day(i: int) -> str:
    return (START + timedelta(days=i)).isoformat()


def _series(values: np.ndarray) -> pd.DataFrame:
    return history_frame([{"day": _day(i), "live_auc": v} for i, v in enumerate(values)])


def _cells(line: str) -> list[str]:
    """The cells of a markdown table row (an escaped ``\\|`` stays inside its cell)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _planted(seed: int, before: int = 20, after: int = 15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0.80, 0.01, before), rng.normal(0.70, 0.01, after)]


def test_history_frame_merges_sorts_and_forward_fills() -> None:
    frame = history_frame(
        [
            {"day": "2024-03-03", "live_auc": 0.79, "retrain_reasons": ["drift"]},
            {"day": date(2024, 3, 1), "champion_version": 1, "drift_share": 0.1},
            {"day": "2024-03-03", "retrain_reasons": "schedule,drift", "promoted_to": "2"},
            {"day": "2024-03-03", "champion_version": "2", "live_auc": None},
            {"day": "2024-03-02", "live_auc": 0.81},
            {"day": "2024-03-04", "rolled_back_to": "1", "champion_version": "1"},
        ]
    )
    assert list(frame.columns) == COLUMNS
    assert list(frame["day"]) == ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]
    assert list(frame["champion_version"]) == ["1", "1", "2", "1"]
    assert frame.loc[2, "live_auc"] == pytest.approx(0.79)  # a later None does not erase it
    assert frame.loc[2, "retrain_reasons"] == "drift,schedule"
    assert list(frame["retrain_reasons"]) == ["", "", "drift,schedule", ""]
    assert frame.loc[2, "promoted_to"] == "2" and frame.loc[0, "promoted_to"] is None
    assert frame.loc[3, "rolled_back_to"] == "1"
    assert math.isnan(frame.loc[0, "live_auc"]) and math.isnan(frame.loc[3, "drift_share"])


def test_history_frame_leading_days_without_champion_stay_none() -> None:
    frame = history_frame([{"day": "2024-03-02", "champion_version": "3"}, {"day": "2024-03-01"}])
    assert list(frame["champion_version"]) == [None, "3"]
    assert history_frame([]).columns.tolist() == COLUMNS


@pytest.mark.parametrize("seed", range(5))
def test_degradation_start_finds_planted_drop(seed: int) -> None:
    change = degradation_start(_series(_planted(seed)))
    assert change is not None
    found = date.fromisoformat(change["day"])
    assert abs((found - START).days - 20) <= 1
    assert change["before"] == pytest.approx(0.80, abs=0.01)
    assert change["after"] == pytest.approx(0.70, abs=0.01)
    assert change["drop"] == pytest.approx(change["before"] - change["after"])
    assert change["p_value"] < change["p_adjusted"] < 0.05


@pytest.mark.parametrize("seed", range(20))
def test_degradation_start_is_quiet_on_flat_noise(seed: int) -> None:
    # 20 seeds in a row: the split-selection correction keeps false alarms near 2.5 %, where the
    # raw Welch p would alarm on ~16 % of flat series and this test would be flaky by seed.
    assert degradation_start(_series(np.random.default_rng(seed).normal(0.8, 0.01, 35))) is None


def test_degradation_start_ignores_an_increase() -> None:
    assert degradation_start(_series(_planted(0)[::-1])) is None


def test_degradation_start_skips_nan_days() -> None:
    values = _planted(1)
    values[[3, 10, 21, 30]] = np.nan
    change = degradation_start(_series(values))
    assert change is not None and change["day"] == _day(20)  # day 20 is a real observation
    values[20] = np.nan  # the first lower day is missing: the next observed day starts the drop
    change = degradation_start(_series(values))
    assert change is not None and change["day"] == _day(22)


def test_degradation_start_too_short_or_empty() -> None:
    assert degradation_start(_series(np.array([0.8, 0.8, 0.8, 0.7, 0.7]))) is None
    assert degradation_start(_series(np.array([0.8, 0.8, 0.8, 0.7, 0.7, 0.7]))) is not None
    assert degradation_start(_series(np.full(10, np.nan))) is None
    assert degradation_start(history_frame([])) is None
    flat = degradation_start(_series(np.full(12, 0.8)))  # zero variance: no drop, no warning
    assert flat is None


def test_to_markdown_shows_days_and_rounded_numbers() -> None:
    frame = history_frame(
        [
            {"day": "2024-03-01", "live_auc": 0.81234, "champion_version": "1"},
            {"day": "2024-03-01", "estimated_auc": 0.8, "estimated_auc_low": 0.77},
            {"day": "2024-03-02", "drift_share": 0.5, "retrain_reasons": "a|b"},
        ]
    )
    text = to_markdown(frame)
    header, rule, *rows = text.splitlines()
    assert _cells(header) == COLUMNS and set(rule) == {"|", "-"}
    assert _cells(rows[0])[:8] == ["2024-03-01", "0.812", "0.812", "0.800", "0.770", "", "1", ""]
    assert _cells(rows[1])[:9] == ["2024-03-02", "", "", "", "", "", "1", "0.500", "a\\|b"]
    assert "nan" not in text and "None" not in text
    short = to_markdown(_series(_planted(0)), max_rows=5)
    assert _day(34) in short and _day(29) not in short and "30 older days" in short


@pytest.mark.parametrize("with_events", [False, True])
def test_plot_png_writes_a_png(tmp_path, with_events: bool) -> None:
    days = [{"day": _day(i), "live_auc": v, "drift_share": 0.02} for i, v in enumerate(_planted(0))]
    if with_events:
        days += [
            {"day": _day(22), "retrain_reasons": ["drift", "performance"], "drift_share": 0.4},
            {"day": _day(25), "promoted_to": "2", "champion_version": "2"},
            {"day": _day(30), "rolled_back_to": "1", "live_auc": None},
        ]
    frame = history_frame(days)
    change = degradation_start(frame) if with_events else None
    target = tmp_path / "history.png"
    plot_png(frame, target, change=change)
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]  # no temp file left behind


ESTIMATE = ("estimated_auc", "estimated_auc_low", "estimated_auc_high")


def test_plot_png_draws_the_estimate_and_its_band(tmp_path, monkeypatch) -> None:
    from matplotlib.axes import Axes

    drawn: list[str] = []
    for method in ("plot", "fill_between"):
        original = getattr(Axes, method)

        def spy(self, *args, _original=original, **kwargs):
            drawn.append(str(kwargs.get("label")))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Axes, method, spy)
    days = [{"day": _day(i), "live_auc": v} for i, v in enumerate(_planted(0))]
    estimates = [  # the first days before any estimate, one day without
        {
            "day": _day(i),
            "estimated_auc": 0.8,
            "estimated_auc_low": 0.78,
            "estimated_auc_high": 0.82,
        }
        for i in range(3, 20)
        if i != 9
    ]
    plot_png(history_frame(days + estimates), tmp_path / "h.png")
    assert "estimated AUC (batch day, before labels)" in drawn and "its interval" in drawn
    drawn.clear()
    plot_png(history_frame(days), tmp_path / "h.png")  # no estimate at all: no line, no band
    assert not [d for d in drawn if "estimated" in d or "interval" in d]


def test_plot_png_handles_an_empty_frame(tmp_path) -> None:
    plot_png(history_frame([]), tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(b"\x89PNG")


def test_import_does_not_load_matplotlib() -> None:
    code = (
        "import sys, retrain_assets.lib.release.timeline; "
        "assert 'matplotlib' not in sys.modules; assert 'scipy.stats' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
