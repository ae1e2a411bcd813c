"""`backtest --compare` judges policies in the model task's primary metric: ROC AUC (binary),
macro ROC AUC (multiclass), RMSE (regression, lower is better). Binary figures keep their AUC keys
and text; the others name their metric. Pure functions on hand-made timelines and reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain_assets.backtest import compare
from retrain_assets.backtest.compare import (
    auc_days_lost,
    comparison_metric,
    higher_is_better,
    mean_live_metric,
    metric_days_lost,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(day: str, value: float | None, reason: str | None = None, **extra) -> dict:
    """A compared timeline row as `with_served_auc` writes it for a non-AUC metric."""
    return {"day": day, "live_metric": value, "live_auc": None, "reason": reason, **extra}


REGRESSION = {
    "never": [
        _row("2025-01-01", None, "bootstrap", champion_version="1", train_seconds=2.0),
        _row("2025-01-02", 1.0, champion_version="1"),
        _row("2025-01-03", 2.0, champion_version="1"),
        _row("2025-01-04", 3.0, champion_version="1"),
    ],
    "daily": [
        _row("2025-01-01", None, "bootstrap", champion_version="1", train_seconds=2.0),
        _row("2025-01-02", 1.5, "schedule", champion_version="2", train_seconds=3.0),
        _row("2025-01-03", None, "schedule", champion_version="3", train_seconds=3.0),
        _row("2025-01-04", 1.0, "schedule", champion_version="3", train_seconds=3.0),
    ],
}


def _report(timeline: list[dict], metric: str | None, final: float, baseline: float) -> dict:
    auc = metric in (None, "roc_auc")
    summary = {
        "retrains": {"bootstrap": 1},
        "detection_delay_batches": None,
        "false_alarms": 0,
        "final_live_auc": final if auc else None,
        "baseline_live_auc": baseline if auc else None,
        "final_champion_version": timeline[-1]["champion_version"],
    }
    if metric is not None:
        summary |= {"metric": metric, "final_live_metric": final, "baseline_live_metric": baseline}
    return {"summary": summary, "timeline": timeline, "timing": {"total_seconds": 3.0}}


def _reports(timelines: dict[str, list[dict]], metric: str | None) -> dict[str, dict]:
    return {n: _report(tl, metric, final=0.81, baseline=0.7) for n, tl in timelines.items()}


def test_metric_directions_come_from_the_tasks() -> None:
    assert higher_is_better("roc_auc") and higher_is_better("macro_roc_auc")
    assert not higher_is_better("rmse")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        higher_is_better("f1")


def test_regression_days_lost_take_the_lowest_rmse_as_best() -> None:
    lost = metric_days_lost(REGRESSION, higher_is_better=False)
    # day 2: best 1.0 (never) -> daily loses 0.5; day 3: only never; day 4: best 1.0 (daily)
    assert lost["never"] == pytest.approx(3.0 - 1.0)
    assert lost["daily"] == pytest.approx(1.5 - 1.0)
    # read as an AUC, the highest would win instead
    assert metric_days_lost(REGRESSION, higher_is_better=True) == {"never": 0.5, "daily": 2.0}
    # the policy with the lower RMSE loses nothing
    better = {"a": REGRESSION["never"][:2], "b": [_row("2025-01-02", 1.7)]}
    assert metric_days_lost(better, higher_is_better=False) == {"a": 0.0, "b": 0.7}


def test_a_regression_comparison_speaks_rmse() -> None:
    result = compare.compare_reports(_reports(REGRESSION, "rmse"))
    assert result["metric"] == "rmse"
    never, daily = result["policies"]["never"], result["policies"]["daily"]
    assert never["metric"] == daily["metric"] == "rmse"
    assert never["mean_live_metric"] == pytest.approx(2.0)
    assert daily["mean_live_metric"] == pytest.approx(1.25)
    assert never["metric_days_lost"] == pytest.approx(2.0)  # the higher RMSE loses
    assert daily["metric_days_lost"] == pytest.approx(0.5)
    assert never["labelled_days"] == 3 and daily["labelled_days"] == 2
    assert never["final_live_metric"] == 0.81 and never["baseline_live_metric"] == 0.7
    for key in ("mean_live_auc", "auc_days_lost", "final_live_auc", "baseline_live_auc"):
        assert never[key] is None and daily[key] is None, key  # an RMSE is not an AUC
    assert result["days"][1]["live_metric"] == {"never": 1.0, "daily": 1.5}
    assert result["days"][1]["live_auc"] == {"never": None, "daily": None}


def test_the_regression_table_and_chart_name_rmse(tmp_path: Path) -> None:
    result = compare.compare_reports(_reports(REGRESSION, "rmse"))
    table = compare.format_comparison(result)
    header = table.splitlines()[0]
    assert "mean live RMSE" in header and "RMSE-days lost" in header and "final RMSE" in header
    assert "AUC" not in table
    assert "Live RMSE: of the scores" in table and "Lower RMSE is better" in table
    never = next(line for line in table.splitlines() if line.startswith("never"))
    assert "2.000" in never and "0.810" in never  # mean live RMSE, final RMSE
    # the markers sit on the RMSE line, and the chart is drawn from it
    assert compare._marker_points(result["days"], "daily")[0] == ("2025-01-01", 1.5, "bootstrap")
    path = compare.plot_comparison(result, tmp_path / "rmse.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_a_multiclass_comparison_behaves_like_auc() -> None:
    timelines = {
        "never": [_row("d1", 0.80, champion_version="1"), _row("d2", 0.60, champion_version="1")],
        "daily": [_row("d1", 0.75, champion_version="2"), _row("d2", 0.70, champion_version="3")],
    }
    result = compare.compare_reports(_reports(timelines, "macro_roc_auc"))
    never, daily = result["policies"]["never"], result["policies"]["daily"]
    assert never["metric_days_lost"] == pytest.approx(0.10)  # the highest macro AUC is best
    assert daily["metric_days_lost"] == pytest.approx(0.05)
    assert never["metric_days_lost"] == auc_days_lost(timelines)["never"]
    for figures in (never, daily):  # a macro AUC is an AUC: the AUC figures are filled
        assert figures["mean_live_auc"] == figures["mean_live_metric"]
        assert figures["auc_days_lost"] == figures["metric_days_lost"]
        assert figures["final_live_auc"] is None  # the summary's: binary only
        assert figures["final_live_metric"] == 0.81
    assert result["days"][0]["live_auc"] == {"never": 0.8, "daily": 0.75}
    table = compare.format_comparison(result)
    assert "mean live macro AUC" in table and "macro AUC-days lost" in table
    assert "Lower" not in table


@pytest.mark.parametrize("metric", [None, "roc_auc"])
def test_binary_figures_keep_their_auc_keys(metric: str | None) -> None:
    """With or without `metric` in the summaries (reports from before the task existed)."""
    timelines = {
        "never": [_row("d1", None, "bootstrap", champion_version="1"), _row("d2", 0.7)],
        "daily": [_row("d1", None, "bootstrap", champion_version="1"), _row("d2", 0.9)],
    }
    for tl in timelines.values():  # a binary timeline: live_auc is the metric
        for row in tl:
            row["live_auc"] = row["live_metric"]
        tl[-1]["champion_version"] = "1"
    result = compare.compare_reports(_reports(timelines, metric))
    assert result["metric"] == "roc_auc"
    for figures in result["policies"].values():
        assert figures["metric"] == "roc_auc"
        assert figures["mean_live_auc"] == figures["mean_live_metric"]
        assert figures["auc_days_lost"] == figures["metric_days_lost"]
        assert figures["final_live_auc"] == figures["final_live_metric"] == 0.81
        assert figures["baseline_live_auc"] == figures["baseline_live_metric"] == 0.7
    assert result["policies"]["never"]["auc_days_lost"] == pytest.approx(0.2)
    assert result["days"][1]["live_auc"] == result["days"][1]["live_metric"]
    table = compare.format_comparison(result)
    assert compare.columns() == compare.COLUMNS and table.startswith("policy")
    assert "mean live AUC" in table and "AUC-days lost" in table and "final AUC" in table
    assert "macro" not in table and "Lower" not in table


def test_the_served_figure_goes_to_the_metric_and_to_the_auc_only_for_an_auc() -> None:
    timeline = [{"day": "d1", "live_auc": None, "live_metric": 3.0, "reason": None}]
    rows = compare.with_served_auc(timeline, {"d1": 2.0}, "rmse")
    assert rows[0]["live_metric"] == 2.0 and rows[0]["live_auc"] is None
    assert rows[0]["reported_metric"] == 3.0 and mean_live_metric(rows) == 2.0
    rows = compare.with_served_auc(timeline, {"d1": 0.8}, "macro_roc_auc")
    assert rows[0]["live_metric"] == rows[0]["live_auc"] == 0.8
    binary = compare.with_served_auc([{"day": "d1", "live_auc": 0.7}], {"d1": 0.9})
    assert binary[0]["live_auc"] == binary[0]["live_metric"] == 0.9
    assert binary[0]["reported_auc"] == binary[0]["reported_metric"] == 0.7


def test_one_comparison_has_one_metric() -> None:
    assert comparison_metric({}) == "roc_auc"
    reports = _reports(REGRESSION, "rmse") | {"old": _report(REGRESSION["never"], None, 1.0, 1.0)}
    with pytest.raises(ValueError, match="different metrics"):
        comparison_metric(reports)
