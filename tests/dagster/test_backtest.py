"""`retrain-assets backtest` replays a simulated history through the real sensors, jobs and
schedule: it must catch abrupt drift within two batches, raise no false alarm on seasonal wobble,
serve a better model at the end than one never retrained, and never touch the user's folders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from retrain_assets.backtest.replay import run_backtest
from retrain_assets.backtest.report import TIMELINE_KEYS
from retrain_assets.cli import main
from retrain_assets.config import load_config
from tests.conftest import SMALL, make_project


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_abrupt_drift_is_caught_and_the_policy_beats_no_retraining(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    spec = dataclasses.replace(SMALL, days=16, drift_day=6, rows_per_day=600, label_delay=1)
    # A small canary so the challenger is judged within the replay; the schedule off, so every
    # retraining here was decided by a detection.
    project = make_project(
        tmp_path / "feed",
        spec,
        {"canary": {"min_rows": 1000}, "schedule": {"enabled": False}},
    )
    before = _hashes(project.root)
    report_path = tmp_path / "report.json"
    code = main(
        [
            "backtest",
            "--config",
            str(project.root / "retrain.yaml"),
            "--json",
            str(report_path),
            "--last-days",
            "4",
            "--quiet",
        ]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    summary, timeline = report["summary"], report["timeline"]
    captured = capsys.readouterr()
    printed = captured.out
    assert "detection delay" in printed and "2024-01-07" in printed
    assert "Downloading artifacts" not in captured.err  # no MLflow bar at every model load

    # the machine-readable report has every documented field
    for key in (
        "first_drift_day",
        "detection_delay_batches",
        "retrains",
        "false_alarms",
        "final_live_auc",
        "baseline_live_auc",
        "estimation_mae",
        "estimation_median_abs_error",
        "estimation_coverage",
        "estimation_days",
    ):
        assert key in summary
    assert all(set(TIMELINE_KEYS) <= set(row) for row in timeline)
    assert [row["day"] for row in timeline][1:] == [
        f"2024-01-{d:02d}" for d in range(1, 18)
    ]  # bootstrap row first; the last day has labels only

    assert summary["true_drift_day"] == "2024-01-07"
    assert summary["first_drift_day"] == "2024-01-07"
    assert summary["detection_delay_batches"] is not None
    assert summary["detection_delay_batches"] <= 2
    assert summary["false_alarms"] == 0
    # One retraining per shift: once its champion is promoted, drift is judged against the batches
    # since the shift began, so the settled shift stops firing (against the training set, which
    # mixes in the rows from before the shift, it fired again as soon as the cooldown ended).
    assert summary["retrains"] == {"bootstrap": 1, "drift": 1}
    promoted = next(row["day"] for row in timeline if row["canary"] == "promote")
    after = [row["drifted"] for row in timeline if row["day"] > promoted]
    assert after == [False] * 5 + [None]  # the last day brings labels only
    assert summary["promotions"] >= 1 and summary["final_champion_version"] != "1"
    assert summary["final_live_auc"] > summary["baseline_live_auc"]
    trigger = next(row for row in timeline if row["reason"] == "drift")
    assert trigger["gates"] == "pass"
    assert any(row["canary"] == "promote" for row in timeline)
    # drift share is reported per day, live AUC once labels arrived (label delay 1)
    assert timeline[1]["drift_share"] == 0.0 and timeline[1]["live_auc"] is None
    assert timeline[2]["live_auc"] is not None
    # every batch got an estimate before its labels; each label day compares it with the labels
    assert all(row["estimated_auc"] is not None for row in timeline[1:-1])
    checked = [row for row in timeline if row["estimation_error"] is not None]
    assert summary["estimation_days"] == len(checked) >= 10
    errors = sorted(abs(row["estimation_error"]) for row in checked)
    assert summary["estimation_mae"] == pytest.approx(sum(errors) / len(errors), abs=1e-3)
    assert "estimate vs labels" in printed

    # the user's landing folder, config and workdir are untouched; nothing was written there
    assert _hashes(project.root) == before
    assert not project.cfg.workdir.exists()


def test_seasonal_wobble_raises_no_false_alarm(tmp_path: Path) -> None:
    spec = dataclasses.replace(SMALL, drift="seasonal", days=21, rows_per_day=400)
    project = make_project(tmp_path / "feed", spec, {"schedule": {"enabled": False}})
    cfg = load_config(project.root / "retrain.yaml")
    truth = json.loads((project.root / "ground_truth.json").read_text())
    out = tmp_path / "replay"
    report = run_backtest(cfg, out, truth=truth)
    summary = report["summary"]
    assert summary["false_alarms"] == 0
    assert summary["first_drift_day"] is None
    assert summary["retrains"] == {"bootstrap": 1}
    assert len(report["timeline"]) == 23  # bootstrap, 21 feature days, the last labels day
    # the replay's own state is under its folder: instance, MLflow store, DVC repo
    assert (out / "dagster").is_dir() and (out / "work" / "mlflow.db").is_file()
    assert (out / "work" / ".dvc").is_dir()
    with pytest.raises(FileExistsError, match="not empty"):
        run_backtest(cfg, out, truth=truth)


def test_weekly_batches_get_the_weekly_schedule_as_live(tmp_path: Path) -> None:
    # Feature batches land on Tuesdays only (labels a day later); the schedule's cron is Monday.
    # The daemon ticks it every Monday, so the replay must too, though no file lands on a Monday.
    spec = dataclasses.replace(SMALL, drift="none", days=30, rows_per_day=400)
    project = make_project(tmp_path / "feed", spec, {"canary": {"mode": "none"}})
    for kind, weekday in (("features", 1), ("labels", 2)):  # Tuesday, Wednesday
        for path in (project.landing / kind).glob("*.parquet"):
            if dt.date.fromisoformat(path.stem).weekday() != weekday:
                path.unlink()
    cfg = load_config(project.root / "retrain.yaml")
    assert cfg.schedule.cron == "0 3 * * 1"
    report = run_backtest(cfg, tmp_path / "replay")
    scheduled = [row["day"] for row in report["timeline"] if row["reason"] == "schedule"]
    # 2024-01-08: the newest batch (01-02) is 2 data days after the bootstrap (12-31): too soon.
    assert scheduled == ["2024-01-15", "2024-01-22", "2024-01-29"]
    assert report["summary"]["retrains"] == {"bootstrap": 1, "schedule": 3}
