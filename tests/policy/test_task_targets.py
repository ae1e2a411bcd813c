"""Multiclass and regression models under an abrupt shift, at full length (issue 15): the same
90-day simulator as the binary targets (1,000 rows a day, the shift on day 30, labels 3 days
late, seed 0), with ``--task multiclass`` (repayment: on_time / late / default; macro
one-vs-rest AUC) and ``--task regression`` (loss_amount; RMSE), replayed through the real
definitions by ``run_backtest``.

For each task: the drift is detected (a drift retraining after the shift, within 2 batches, no
false alarm), a retraining decided after the shift passes its gates and is promoted through the
canary (its paired non-inferiority test on per-row losses), and the final live metric beats the
never-retrained model's, in the metric's direction. Each test writes its summary to
``$POLICY_RESULTS/<task>_abrupt.json``: the rows of the README's backtest table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain_assets.backtest.replay import load_truth, run_backtest
from retrain_assets.config import load_config
from retrain_assets.lib.data import simulate as sim
from tests.policy.test_simulator_targets import GATES, START, _soft

pytestmark = pytest.mark.policy


def _replay(tmp_path: Path, task: str) -> dict[str, Any]:
    spec = sim.SimulationSpec(
        days=90, rows_per_day=1000, drift="abrupt", drift_day=30, seed=0, start_date=START,
        task=task,
    )  # fmt: skip
    sim.simulate(tmp_path / "feed", spec)
    path = tmp_path / "feed" / "retrain.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **GATES}))
    cfg = load_config(path)
    report = run_backtest(cfg, tmp_path / "replay", truth=load_truth(None, cfg))
    out = Path(os.environ.get("POLICY_RESULTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{task}_abrupt.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


@pytest.mark.parametrize(
    ("task", "metric"), [("multiclass", "macro_roc_auc"), ("regression", "rmse")]
)
def test_an_abrupt_shift_is_caught_retrained_promoted_and_pays_off(
    tmp_path: Path, task: str, metric: str
) -> None:
    report = _replay(tmp_path, task)
    s = report["summary"]
    assert s["metric"] == metric
    after = [(d, r) for d, r in _soft(report) if d >= s["true_drift_day"]]
    assert "drift" in {r for _, r in after}, after
    assert s["detection_delay_batches"] is not None and s["detection_delay_batches"] <= 2, s
    assert s["false_alarms"] == 0
    promoted = [
        row["day"]
        for row in report["timeline"]
        if row["day"] >= s["true_drift_day"] and "promote" in (row["canary"] or "")
    ]
    assert promoted, "no promotion through the canary after the shift"
    final, never = s["final_live_metric"], s["baseline_live_metric"]
    assert final is not None and never is not None
    assert final < never if metric == "rmse" else final > never, (final, never)
