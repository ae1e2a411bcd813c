"""`retrain-assets backtest --compare` replays one short simulated history under two policies
through the real sensors, jobs and schedule: retraining every day must serve at least as well as
never retraining, each policy's figures must all be there, and the user's folders stay untouched.

Kept short (8 days x 300 rows, two policies): the suite's budget is ten minutes on two cores. The
other built-in policies differ only in their overlays, tested in tests/unit/test_compare.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from retrain_assets.cli import main
from tests.conftest import SMALL, make_project
from tests.dagster.test_backtest import _hashes

FIGURES = (
    "retrains",
    "retrains_total",
    "train_seconds",
    "mean_live_auc",
    "labelled_days",
    "auc_days_lost",
    "detection_delay_batches",
    "false_alarms",
    "final_live_auc",
    "baseline_live_auc",
    "promotions",
    "final_champion_version",
    "replay_seconds",
)


def test_daily_retraining_serves_at_least_as_well_as_never(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Abrupt drift on day 4, labels a day late; a small model (the fit is most of a retraining).
    # Seed 11: daily serves the best AUC of the two on every label day (0.820 vs 0.810 on average).
    spec = dataclasses.replace(SMALL, seed=11)
    project = make_project(tmp_path / "feed", spec, {"model": {"params": {"max_iter": 30}}})
    before = _hashes(project.root)
    report_path = tmp_path / "compare.json"
    code = main(
        [
            "backtest",
            "--config",
            str(project.root / "retrain.yaml"),
            "--compare",
            "--policies",
            "never,daily",
            "--json",
            str(report_path),
            "--last-days",
            "3",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    result = json.loads(report_path.read_text())
    never, daily = result["policies"]["never"], result["policies"]["daily"]
    assert list(result["policies"]) == ["never", "daily"]

    for figures in (never, daily):
        assert set(FIGURES) <= set(figures)
        missing = [k for k in FIGURES if figures[k] is None and k != "detection_delay_batches"]
        assert missing == []
        assert figures["detection_delay_batches"] is None  # no soft trigger in either policy
        assert figures["false_alarms"] == 0  # the answer key is next to the config
        # the served AUC exists on every label day (01-02 .. 01-09), whoever scored the rows
        assert figures["labelled_days"] == spec.days
    assert never["retrains"] == {"bootstrap": 1}
    assert never["promotions"] == 0 and never["final_champion_version"] == "1"
    assert daily["retrains"] == {"bootstrap": 1, "schedule": spec.days}
    assert daily["promotions"] >= 1 and daily["train_seconds"] > never["train_seconds"]
    assert daily["mean_live_auc"] >= never["mean_live_auc"]
    assert daily["auc_days_lost"] < never["auc_days_lost"]

    # the chart can be redrawn from the JSON: every policy's served AUC per day
    labelled = [d for d in result["days"] if d["live_auc"]["never"] is not None]
    assert len(labelled) == spec.days
    assert all(d["live_auc"]["daily"] is not None for d in labelled)
    assert sum(d["reason"]["daily"] == "schedule" for d in result["days"]) == spec.days

    chart = report_path.with_suffix(".png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart: {chart}" in captured.err
    assert "mean live AUC" in captured.out and "AUC-days lost" in captured.out
    # stderr is not a terminal here: a plain progress line every ~10 %, named after the policy
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert any(line.startswith("[never 1/2] day") for line in progress)
    assert any(line.startswith("[daily 2/2] day 9/9 (100%)") for line in progress)
    assert len(progress) <= 2 * 10

    assert _hashes(project.root) == before  # the user's landing folder and config: only read
    assert not project.cfg.workdir.exists()
