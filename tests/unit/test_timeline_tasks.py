"""Model history in the model task's metric (retrain_assets.lib.release.timeline and the
model_history helpers that feed it).

Why: a regression model's live metric is an RMSE, where a degradation is a RISE. A history that
looked for a fall would call an improving regressor degraded and miss a failing one, and a chart
labelled "AUC" over RMSE figures would mislead the person reading it. Binary must read exactly as
before (same AUC columns, same change point), since people and tests already rely on it.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from retrain_assets.lib.release.timeline import (
    COLUMNS,
    degradation_start,
    history_frame,
    metric_label,
    plot_png,
)
from retrain_assets.release.model_history import (
    MLFLOW_COLUMNS,
    fact,
    mlflow_columns,
    primary_metric,
)
from tests.conftest import HISTORY_COLUMNS

START = date(2024, 3, 1)
RISE_DAY = 20


def _day(i: int) -> str:
    return (START + timedelta(days=i)).isoformat()


def _rmse_rising(seed: int, before: int = RISE_DAY, after: int = 15) -> np.ndarray:
    """An RMSE of ~1.0 for ``before`` days, then ~1.4 (worse) for ``after`` days."""
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(1.0, 0.03, before), rng.normal(1.4, 0.03, after)]


def _regression_frame(values: np.ndarray):
    return history_frame([{"day": _day(i), "live_metric": v} for i, v in enumerate(values)])


def test_columns_carry_live_metric_after_live_auc() -> None:
    assert COLUMNS == HISTORY_COLUMNS
    assert COLUMNS.index("live_metric") == COLUMNS.index("live_auc") + 1


@pytest.mark.parametrize("seed", range(5))
def test_regression_rmse_rise_is_the_change_point(seed: int) -> None:
    frame = _regression_frame(_rmse_rising(seed))
    assert frame["live_auc"].isna().all()  # a regressor has no AUC

    change = degradation_start(frame, "live_metric", higher_is_better=False)

    assert change is not None and change["day"] == _day(RISE_DAY)
    assert change["before"] == pytest.approx(1.0, abs=0.03)  # in RMSE units, not negated
    assert change["after"] == pytest.approx(1.4, abs=0.03)
    assert (
        change["drop"] == pytest.approx(change["after"] - change["before"]) and change["drop"] > 0
    )
    assert change["p_value"] < change["p_adjusted"] < 0.05


def test_regression_falling_rmse_is_not_a_degradation() -> None:
    improving = _regression_frame(_rmse_rising(0)[::-1])
    assert degradation_start(improving, "live_metric", higher_is_better=False) is None
    # Read as a higher-is-better metric, the same fall would have been an alarm.
    assert degradation_start(improving, "live_metric") is not None


def test_regression_rmse_is_quiet_on_flat_noise() -> None:
    flat = _regression_frame(np.random.default_rng(3).normal(1.0, 0.03, 35))
    assert degradation_start(flat, "live_metric", higher_is_better=False) is None


def test_binary_change_point_is_unchanged() -> None:
    rng = np.random.default_rng(0)
    aucs = np.r_[rng.normal(0.80, 0.01, 20), rng.normal(0.70, 0.01, 15)]
    frame = history_frame([{"day": _day(i), "live_auc": v} for i, v in enumerate(aucs)])

    assert list(frame["live_metric"]) == list(frame["live_auc"])  # a binary metric is its AUC
    on_auc = degradation_start(frame, "live_auc")
    on_metric = degradation_start(frame)
    assert on_auc is not None and on_auc == on_metric
    assert on_auc["day"] == _day(20) and on_auc["before"] > on_auc["after"]
    assert on_auc["drop"] == pytest.approx(on_auc["before"] - on_auc["after"])
    assert degradation_start(frame, higher_is_better=False) is None  # a fall is no rise


def test_performance_fact_reads_metric_value_with_an_auc_fallback() -> None:
    binary = {"auc": 0.81, "metric": "roc_auc", "metric_value": 0.81, "champion_version": "2"}
    old_binary = {"auc": 0.79, "champion_version": "1"}  # written before metric_value existed
    regression = {"metric": "rmse", "metric_value": 1.3, "rmse": 1.3, "baseline_auc": None}
    assert fact("performance", "2024-03-01", None, binary) == {
        "day": "2024-03-01",
        "live_auc": 0.81,
        "live_metric": 0.81,
        "champion_version": "2",
    }
    old = fact("performance", "2024-03-01", None, old_binary)
    assert old is not None and old["live_metric"] == old["live_auc"] == 0.79
    new = fact("performance", "2024-03-01", None, regression)
    assert new is not None and new["live_auc"] is None and new["live_metric"] == 1.3


def test_primary_metric_and_mlflow_columns_per_task() -> None:
    assert primary_metric("binary") == ("roc_auc", True)
    assert primary_metric("multiclass") == ("macro_roc_auc", True)
    assert primary_metric("regression") == ("rmse", False)
    assert mlflow_columns("binary", "roc_auc") == MLFLOW_COLUMNS
    columns = mlflow_columns("regression", "rmse")
    assert columns["metrics.test_rmse"] == "test_metric"
    assert columns["metrics.champion_test_rmse"] == "champion_test_metric"
    assert columns["metrics.test_auc"] == "test_auc"  # kept; absent runs' columns are skipped
    order = list(columns.values())
    assert order.index("test_metric") == order.index("champion_test_auc") + 1
    multiclass = mlflow_columns("multiclass", "macro_roc_auc")
    assert multiclass["metrics.test_macro_roc_auc"] == "test_metric"
    assert multiclass["metrics.champion_test_macro_roc_auc"] == "champion_test_metric"


def _spy_ylabels(monkeypatch) -> list[str]:
    from matplotlib.axes import Axes

    labels: list[str] = []
    original = Axes.set_ylabel

    def spy(self, ylabel, *args, **kwargs):
        labels.append(str(ylabel))
        return original(self, ylabel, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_ylabel", spy)
    return labels


@pytest.mark.parametrize(
    ("metric", "label"), [("roc_auc", "AUC"), ("macro_roc_auc", "macro AUC"), ("rmse", "RMSE")]
)
def test_metric_label_names_the_metric(metric: str, label: str) -> None:
    assert metric_label(metric) == label


def test_plot_png_labels_a_regression_chart_rmse(tmp_path, monkeypatch) -> None:
    labels = _spy_ylabels(monkeypatch)
    frame = _regression_frame(_rmse_rising(0))
    change = degradation_start(frame, "live_metric", higher_is_better=False)
    target = tmp_path / "history.png"

    plot_png(frame, target, change, metric="rmse")

    assert labels[0] == "RMSE" and "AUC" not in labels
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000


def test_plot_png_binary_label_stays_auc(tmp_path, monkeypatch) -> None:
    labels = _spy_ylabels(monkeypatch)
    frame = history_frame([{"day": _day(i), "live_auc": 0.8} for i in range(10)])
    plot_png(frame, tmp_path / "h.png")
    assert labels[0] == "AUC"
    assert (tmp_path / "h.png").read_bytes().startswith(b"\x89PNG")
