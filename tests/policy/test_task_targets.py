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

from pathlib import Path

import pytest

from tests.policy.test_simulator_targets import _replay, _soft

pytestmark = pytest.mark.policy


@pytest.mark.parametrize(
    ("task", "metric"), [("multiclass", "macro_roc_auc"), ("regression", "rmse")]
)
def test_an_abrupt_shift_is_caught_retrained_promoted_and_pays_off(
    tmp_path: Path, task: str, metric: str
) -> None:
    report = _replay(tmp_path, "abrupt", task)
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
