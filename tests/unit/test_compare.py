"""`backtest --compare`: policies are overlays checked before any replay, and the figures (mean
live AUC, AUC-days lost, promotions, ...) and the progress line are pure functions."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from retrain_assets.backtest import compare
from retrain_assets.backtest.compare import (
    PolicyError,
    auc_days_lost,
    deep_merge,
    mean_live_auc,
    parse_policy_arg,
    policy_configs,
    promotions,
    select_policies,
    train_seconds,
)
from retrain_assets.backtest.report import DayRecord
from retrain_assets.cli import ProgressLine, format_progress, main
from retrain_assets.config import RetrainConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cfg(tmp_path: Path) -> RetrainConfig:
    return RetrainConfig.model_validate(
        {
            "data": {
                "landing_dir": tmp_path / "landing",
                "target_column": "y",
                "numerical_features": ["x"],
                "start_date": "2025-01-01",
            },
            "model": {"registered_name": "m"},
            "schedule": {"cron": "0 5 * * 2"},
        }
    )


def _row(day: str, auc: float | None, reason: str | None = None, **extra) -> dict:
    return {"day": day, "live_auc": auc, "reason": reason, **extra}


# --- overlays -------------------------------------------------------------------------------------


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"drift": {"retrain": True, "consecutive": 2}, "model": {"params": {"a": 1}}}
    merged = deep_merge(base, {"drift": {"retrain": False}, "model": {"params": {"b": 2}}})
    assert merged == {
        "drift": {"retrain": False, "consecutive": 2},
        "model": {"params": {"a": 1, "b": 2}},
    }
    assert base["drift"]["retrain"] is True  # the user's config is not mutated
    assert deep_merge({"a": {"b": 1}}, {"a": 3}) == {"a": 3}


def test_builtin_policies_switch_the_triggers(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    configs = policy_configs(cfg, *select_policies(None, []))
    assert list(configs) == ["never", "weekly", "policy", "daily"]
    never, weekly, policy, daily = configs.values()
    assert not never.schedule.enabled and not never.drift.retrain
    assert not never.performance.retrain
    assert weekly.schedule.enabled and weekly.schedule.cron == "0 5 * * 2"  # the user's schedule
    assert not weekly.drift.retrain and not weekly.performance.retrain
    assert policy == cfg
    assert daily.schedule.cron == "0 3 * * *" and daily.schedule.max_days_between_retrains == 1
    assert daily.canary.mode == "none"
    assert not daily.drift.retrain and not daily.performance.retrain
    # everything else is the user's
    assert daily.data == cfg.data and daily.model == cfg.model and daily.gates == cfg.gates


def test_a_user_overlay_is_merged_into_the_users_config(tmp_path: Path) -> None:
    (tmp_path / "fast.yaml").write_text("drift:\n  cooldown_days: 2\n  consecutive: 1\n")
    overlays, origins = select_policies(["never"], [("fast", tmp_path / "fast.yaml")])
    assert list(overlays) == ["never", "fast"]  # a user policy not picked is still added
    fast = policy_configs(_cfg(tmp_path), overlays, origins)["fast"]
    assert fast.drift.cooldown_days == 2 and fast.drift.consecutive == 1
    assert fast.drift.retrain and fast.schedule.cron == "0 5 * * 2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drift:\n  cooldwn_days: 3\n", "fast.yaml: drift.cooldwn_days is not a setting"),
        ("schedul:\n  enabled: false\n", "fast.yaml: schedul is not a setting"),
        ("drift:\n  cooldown_days: -1\n", "fast.yaml: drift.cooldown_days: Input should be"),
        ("- drift\n", "fast.yaml: a policy overlay is a mapping"),
    ],
)
def test_a_bad_overlay_names_its_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "fast.yaml").write_text(text)
    with pytest.raises(PolicyError, match=re.escape(message)):
        overlays, origins = select_policies(None, [("fast", tmp_path / "fast.yaml")])
        policy_configs(_cfg(tmp_path), overlays, origins)


def test_policy_names_are_checked(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    with pytest.raises(PolicyError, match="'fast' is used twice"):
        select_policies(None, [("fast", a), ("fast", b)])
    with pytest.raises(PolicyError, match="'daily' is used twice"):
        select_policies(None, [("daily", a)])
    with pytest.raises(PolicyError, match="named twice: never"):
        select_policies(["never", "daily", "never"], [])
    with pytest.raises(PolicyError, match="unknown policies hourly"):
        select_policies(["never", "hourly"], [])
    with pytest.raises(PolicyError, match="overlay not found"):
        select_policies(None, [("fast", a)])
    assert parse_policy_arg("fast=conf/fast.yaml") == ("fast", Path("conf/fast.yaml"))
    for bad in ("fast", "=fast.yaml", "fast=", "../x=fast.yaml"):
        with pytest.raises(PolicyError, match="--policy"):
            parse_policy_arg(bad)


def _config_file(tmp_path: Path) -> Path:
    (tmp_path / "landing").mkdir()
    path = tmp_path / "retrain.yaml"
    path.write_text(
        "data:\n  landing_dir: landing\n  target_column: y\n  numerical_features: [x]\n"
        "  start_date: '2025-01-01'\nmodel:\n  registered_name: m\n"
    )
    return path


def test_the_cli_rejects_a_bad_overlay_before_any_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replay(*args, **kwargs):
        raise AssertionError("a replay started")

    monkeypatch.setattr("retrain_assets.backtest.replay.run_backtest", replay)
    (tmp_path / "fast.yaml").write_text("drift:\n  cooldwn_days: 3\n")
    config = str(_config_file(tmp_path))
    fast = f"fast={tmp_path / 'fast.yaml'}"
    with pytest.raises(SystemExit, match=re.escape("fast.yaml: drift.cooldwn_days is not a")):
        main(["backtest", "--config", config, "--compare", "--policy", fast])
    with pytest.raises(SystemExit, match="go with --compare"):
        main(["backtest", "--config", config, "--policies", "never,daily"])


# --- figures --------------------------------------------------------------------------------------

TIMELINES = {
    "never": [
        _row("2025-01-01", None, "bootstrap", champion_version="1", train_seconds=2.0),
        _row("2025-01-02", 0.80, champion_version="1"),
        _row("2025-01-03", 0.70, champion_version="1"),
        _row("2025-01-04", 0.60, champion_version="1"),
    ],
    "daily": [
        _row("2025-01-01", None, "bootstrap", champion_version="1", train_seconds=2.0),
        _row("2025-01-02", 0.82, "schedule", champion_version="2", train_seconds=3.0),
        _row("2025-01-03", None, "schedule", champion_version="3", train_seconds=3.5),
        _row("2025-01-04", 0.78, "schedule", champion_version="3", train_seconds=0.25),
    ],
    "weekly": [
        _row("2025-01-01", None, "bootstrap", champion_version="1", train_seconds=2.0),
        _row("2025-01-02", 0.85, champion_version="1"),
        _row("2025-01-03", 0.75, "schedule", champion_version="2", train_seconds=3.0),
        _row("2025-01-04", 0.70, "rollback", champion_version="1"),
    ],
    "blind": [_row("2025-01-01", None, "bootstrap", champion_version="1")],
}


def test_auc_days_lost_sums_the_shortfall_against_each_days_best() -> None:
    lost = auc_days_lost(TIMELINES)
    # day 2: best 0.85 (weekly); 3: best 0.75 (weekly, daily has no value); 4: 0.78 (daily)
    assert lost["never"] == pytest.approx((0.85 - 0.80) + (0.75 - 0.70) + (0.78 - 0.60))
    assert lost["daily"] == pytest.approx(0.85 - 0.82)
    assert lost["weekly"] == pytest.approx(0.78 - 0.70)
    assert lost["blind"] is None  # no labelled day: nothing to compare
    assert auc_days_lost({"alone": TIMELINES["never"]}) == {"alone": 0.0}


def test_mean_auc_training_seconds_and_promotions() -> None:
    assert mean_live_auc(TIMELINES["never"]) == pytest.approx(0.70)
    assert mean_live_auc(TIMELINES["daily"]) == pytest.approx(0.80)  # the labelled days only
    assert mean_live_auc(TIMELINES["blind"]) is None
    assert train_seconds(TIMELINES["daily"]) == 8.75
    assert train_seconds(TIMELINES["never"]) == 2.0
    # the first champion and a rollback to an old version are not promotions
    assert [promotions(TIMELINES[n]) for n in ("never", "daily", "weekly")] == [0, 2, 1]


def _report(timeline: list[dict], retrains: dict[str, int]) -> dict:
    summary = {
        "retrains": retrains,
        "detection_delay_batches": 2,
        "false_alarms": 0,
        "final_live_auc": 0.81,
        "baseline_live_auc": 0.7,
        "final_champion_version": timeline[-1]["champion_version"],
    }
    return {"summary": summary, "timeline": timeline, "timing": {"total_seconds": 12.5}}


def test_the_comparison_has_every_figure_for_every_policy() -> None:
    reports = {
        "never": _report(TIMELINES["never"], {"bootstrap": 1}),
        "daily": _report(TIMELINES["daily"], {"bootstrap": 1, "schedule": 3}),
    }
    result = compare.compare_reports(reports, {"never": {}, "daily": {}})
    daily = result["policies"]["daily"]
    assert daily == {
        "retrains": {"bootstrap": 1, "schedule": 3},
        "retrains_total": 4,
        "train_seconds": 8.75,
        "mean_live_auc": 0.8,
        "labelled_days": 2,
        "auc_days_lost": 0.0,
        "detection_delay_batches": 2,
        "false_alarms": 0,
        "final_live_auc": 0.81,
        "baseline_live_auc": 0.7,
        "metric": "roc_auc",
        "mean_live_metric": 0.8,
        "metric_days_lost": 0.0,
        "final_live_metric": 0.81,
        "baseline_live_metric": 0.7,
        "promotions": 2,
        "final_champion_version": "3",
        "replay_seconds": 12.5,
    }
    assert result["policies"]["never"]["auc_days_lost"] == pytest.approx(0.2)
    assert [d["day"] for d in result["days"]] == [f"2025-01-0{d}" for d in range(1, 5)]
    assert result["days"][2]["live_auc"] == {"never": 0.7, "daily": None}
    assert result["days"][1]["reason"] == {"never": None, "daily": "schedule"}
    table = compare.format_comparison(result)
    assert "never" in table and "bootstrap 1, schedule 3" in table and "0.800" in table


def test_the_served_auc_replaces_the_reported_one() -> None:
    timeline = [_row("2025-01-01", None, "bootstrap"), _row("2025-01-02", None, "schedule")]
    rows = compare.with_served_auc(timeline, {"2025-01-02": 0.81})
    assert [(r["live_auc"], r["reported_auc"]) for r in rows] == [(None, None), (0.81, None)]
    assert rows[1]["reason"] == "schedule" and timeline[1]["live_auc"] is None


def test_retraining_markers_sit_on_the_policys_line() -> None:
    days = [
        {"day": "d0", "live_auc": {"p": None}, "reason": {"p": "bootstrap"}},
        {"day": "d1", "live_auc": {"p": 0.8}, "reason": {"p": None}},
        {"day": "d2", "live_auc": {"p": None}, "reason": {"p": "drift, schedule"}},
    ]
    # before any label: at the first known AUC; on a day without one: at the last known
    assert compare._marker_points(days, "p") == [("d0", 0.8, "bootstrap"), ("d2", 0.8, "drift")]


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    reports = {n: _report(TIMELINES[n], {"bootstrap": 1}) for n in ("never", "daily", "weekly")}
    path = compare.plot_comparison(compare.compare_reports(reports), tmp_path / "c" / "x.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


# --- the progress line ----------------------------------------------------------------------------


def test_format_progress_shows_days_decisions_and_time_left() -> None:
    line = format_progress("weekly 2/4", 10, 40, {"schedule": 1, "drift": 2}, 1, 65.0)
    assert line == (
        "[weekly 2/4] day 10/40 (25%)  retrains: drift 2, schedule 1  promotions 1  "
        "1m05s elapsed, ~3m15s left"
    )
    assert format_progress("", 0, 5, {}, 0, 0.0).startswith("day 0/5 (0%)  retrains: none")
    assert "1h01m elapsed" in format_progress("", 1, 1, {}, 0, 3660.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    stream, clock = io.StringIO(), _Clock()
    line = ProgressLine(stream, label="daily 1/2", tty=True, clock=clock)
    for done, (reasons, version) in enumerate(
        [(["schedule"], "2"), ([], "2"), (["schedule"], "3")], start=1
    ):
        clock.now = 2.0 * done
        line(DayRecord(day=f"d{done}", reasons=reasons, champion_version=version), done, 3)
    line.close()
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    last = text.rsplit("\r", 1)[-1]
    assert last.startswith("[daily 1/2] day 3/3 (100%)  retrains: schedule 2  promotions 1")
    assert "6s elapsed, ~0s left" in last


def test_progress_prints_a_plain_line_every_tenth_elsewhere() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream, tty=False, clock=_Clock())
    for done in range(1, 101):
        line(DayRecord(day=str(done)), done, 100)
    line.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in stream.getvalue()
    assert lines[0].startswith("day 10/100 (10%)") and lines[-1].startswith("day 100/100")
    short = io.StringIO()
    few = ProgressLine(short, tty=False, clock=_Clock())
    for done in (1, 2, 3):  # fewer days than tenths: a line each, the last one included
        few(DayRecord(day=str(done)), done, 3)
    assert len(short.getvalue().splitlines()) == 3
