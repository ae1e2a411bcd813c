"""`retrain-assets rollback --reason ... [--by ...]`: one step back, from the command line, against
the Dagster instance in $DAGSTER_HOME and the config in $RETRAIN_CONFIG, as an operator runs it.

After a promotion v1 -> v2 the command moves `champion` back to v1, records who and why on v2 and
in the run, and the model's history shows the rollback; with no previous champion it refuses,
exits non-zero and leaves the alias where it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient

from retrain_assets import cli
from tests.conftest import (
    FAST,
    HISTORY_COLUMNS,
    SMALL,
    START,
    Loop,
    Project,
    failure_message,
    make_project,
)

BOOT = ("landing_sensor", "bootstrap_sensor")
MODEL = "car_loan"


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _project(tmp_path: Path, monkeypatch) -> Project:
    # canary mode none: the retraining promotes at once; any candidate passes the AUC gate.
    project = make_project(
        tmp_path / "feed", SMALL, {**FAST, "canary": {"mode": "none"}, "gates": {"auc_ratio": 0.5}}
    )
    monkeypatch.setenv("RETRAIN_CONFIG", str(project.cfg.source))
    project.hold_back()
    return project


def _aliases(project: Project) -> dict[str, str]:
    model = MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri).get_registered_model(
        MODEL
    )
    return {alias: str(version) for alias, version in model.aliases.items()}


def _tags(project: Project, version: str) -> dict[str, str]:
    client = MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)
    return dict(client.get_model_version(MODEL, version).tags)


def _latest(instance: dg.DagsterInstance, asset: str):
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    return event.run_id, meta


def _cli(*argv: str) -> tuple[int, str, str]:
    """cli.main's exit code, stdout and stderr. Not capsys: DVC's logger keeps the stream it
    first saw, and a capsys stream is closed after its test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _table(markdown: str) -> tuple[list[str], list[list[str]]]:
    """A markdown table's header and rows as stripped cells (whatever the column padding)."""
    header, _rule, *rows = [line for line in markdown.splitlines() if line.startswith("|")]

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]

    return cells(header), [cells(row) for row in rows]


def _rollback_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name="rollback_job")))


def test_rollback_cli_moves_the_champion_back_and_records_who_and_why(
    tmp_path: Path, monkeypatch, home_instance
) -> None:
    instance = home_instance
    project = _project(tmp_path, monkeypatch)
    loop = Loop(project, instance)
    loop.settle(BOOT)  # v1
    project.land_until(_day(0))  # one production day: the history has a day to show
    loop.settle(("landing_sensor",))
    retrain = project.defs.resolve_job_def("retrain_job").execute_in_process(
        instance=instance, tags={"retrain/reason": "manual"}, raise_on_error=False
    )
    assert retrain.success, failure_message(retrain)
    assert _aliases(project) == {"champion": "2", "previous_champion": "1"}

    code, out, _ = _cli("rollback", "--reason", "planted regression", "--by", "tester")

    assert code == 0
    assert out == "champion v2 -> v1 (planted regression; by tester)\n"
    assert _aliases(project) == {"champion": "1"}
    tags = _tags(project, "2")
    assert tags["rolled_back"] == "true"
    assert tags["rollback.reason"] == "planted regression" and tags["rollback.by"] == "tester"
    [run] = _rollback_runs(instance)  # the CLI ran on the instance in $DAGSTER_HOME
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["retrain/reason"] == "rollback"
    assert tags["rollback.dagster_run_id"] == run.run_id
    run_id, promoted = _latest(instance, "promoted_model")
    assert run_id == run.run_id
    assert promoted["decision"] == "rollback" and promoted["requested_by"] == "tester"
    assert (promoted["old_version"], promoted["new_version"]) == ("2", "1")
    assert promoted["reason"] == "planted regression"

    # The rollback run refreshed the model's history after moving the alias.
    run_id, history = _latest(instance, "model_history")
    assert run_id == run.run_id
    _, drift = _latest(instance, "drift_report")
    _, est = _latest(instance, "estimated_performance")
    estimate = [
        f"{est[k]:.3f}" for k in ("estimated_auc", "estimated_auc_low", "estimated_auc_high")
    ]
    assert history["days"] == 2 and history["retraining_cycles"] == 2
    header, rows = _table(history["history"])
    assert header == HISTORY_COLUMNS
    assert rows == [
        [_day(-1), "", "", "", "", "", "", "", "bootstrap", "", ""],  # decided the day before
        [_day(0), "", "", *estimate, "", f"{drift['share_drifted']:.3f}", "", "2", "1"],
    ]
    assert history["degradation_began"] == "not detected"
    assert Path(history["chart"]).read_bytes().startswith(b"\x89PNG")


def test_rollback_cli_refuses_without_a_previous_champion(
    tmp_path: Path, monkeypatch, home_instance
) -> None:
    instance = home_instance
    project = _project(tmp_path, monkeypatch)
    Loop(project, instance).settle(BOOT)  # v1, the first champion: nothing to go back to
    assert _aliases(project) == {"champion": "1"}

    code, _, err = _cli("rollback", "--reason", "just because", "--by", "tester")

    assert code != 0
    [run] = _rollback_runs(instance)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert err.splitlines()[-1] == f"rollback failed (Dagster run {run.run_id})"
    failures = [
        event.dagster_event.step_failure_data.error.message
        for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    ]
    assert len(failures) == 1 and "champion v1 records no previous champion" in failures[0]
    assert _aliases(project) == {"champion": "1"}
    assert not {"rolled_back", "rollback.reason", "rollback.by"} & set(_tags(project, "1"))
    assert instance.get_latest_materialization_event(dg.AssetKey("promoted_model")).run_id != (
        run.run_id
    )
