"""fleet_status through real Dagster: two simulated models of a fleet folder replayed on one
instance (loans drifts from its fourth day and is never retrained on it, losses stays quiet), then
the overview's job, sensor and `retrain-assets status` against that instance."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from retrain_assets import cli, names
from retrain_assets.backtest.replay import Replay
from retrain_assets.definitions import build_fleet_definitions
from retrain_assets.fleet import Fleet, load_fleet
from retrain_assets.lib.overview import attention
from retrain_assets.names import (
    FLEET_GROUP,
    FLEET_STATUS,
    FLEET_STATUS_JOB,
    FLEET_STATUS_SCHEDULE,
    FLEET_STATUS_SENSOR,
)
from retrain_assets.overview import build_overview_defs, collect_status
from tests.dagster.test_fleet import LOANS, LOSSES, write_model

# Fewer days than test_fleet's: the replay is this module's cost.
DRIFTING = dataclasses.replace(LOANS, days=5, drift_day=2)
QUIET = dataclasses.replace(LOSSES, days=5)
MODELS = ("loans", "losses")
# No drift_sensor: loans keeps the champion trained before its drift, so its newest day drifts.
SENSORS = tuple(f"{m}_{s}" for m in MODELS for s in (names.LANDING_SENSOR, names.BOOTSTRAP_SENSOR))


@dataclass
class Replayed:
    folder: Path
    fleet: Fleet
    defs: dg.Definitions
    instance: dg.DagsterInstance
    home: Path


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    folder = tmp_path_factory.mktemp("fleet")
    write_model(folder, "loans", DRIFTING, {})
    write_model(folder, "losses", QUIET, {})
    fleet = load_fleet(folder)
    defs = build_fleet_definitions(fleet)  # with the overview: a folder fleet
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            loop = Replay(defs, instance, keep_results=True)
            loop.settle(SENSORS)
            assert all(r.success for r in loop.results)
            yield Replayed(folder, fleet, defs, instance, home)


def materialise(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    result = defs.resolve_job_def(FLEET_STATUS_JOB).execute_in_process(instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    meta = event.step_materialization_data.materialization.metadata
    return {k: v.value for k, v in meta.items()}


def test_the_overview_defines_its_asset_job_schedule_and_sensor(replayed: Replayed) -> None:
    defs = replayed.defs
    dg.Definitions.validate_loadable(defs)
    node = defs.resolve_asset_graph().get(dg.AssetKey(FLEET_STATUS))
    assert node.group_name == FLEET_GROUP and node.partitions_def is None
    assert dg.AssetKey(["loans", names.PROMOTED_MODEL]) in node.parent_keys
    schedule = defs.resolve_schedule_def(FLEET_STATUS_SCHEDULE)
    assert schedule.cron_schedule == "*/15 * * * *" and schedule.job_name == FLEET_STATUS_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    sensor = defs.resolve_sensor_def(FLEET_STATUS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_each_model_reads_its_champion_task_metric_and_figures(replayed: Replayed) -> None:
    loans = collect_status(replayed.fleet.models["loans"], replayed.instance)
    losses = collect_status(replayed.fleet.models["losses"], replayed.instance)
    assert (loans.name, loans.task, loans.metric) == ("loans", "binary", "roc_auc")
    assert (losses.name, losses.task, losses.metric) == ("losses", "regression", "rmse")
    assert not losses.higher_is_better
    for status in (loans, losses):
        assert status.champion is not None and int(status.champion) >= 1
        assert status.test_metric is not None and status.live_metric is not None
        assert status.retrain_reason == "bootstrap" and status.retrain_outcome == "ok"
        assert status.champion_age is not None and status.champion_age >= 1
        assert status.drift_day is not None and status.newest_day is not None
        assert status.drift_day <= status.newest_day  # the newest labels land a day later
    assert loans.estimated_metric is not None and losses.estimated_metric is None
    assert loans.drifted and not losses.drifted


def test_fleet_status_flags_the_drifted_model_and_not_the_quiet_one(replayed: Replayed) -> None:
    meta = materialise(replayed.defs, replayed.instance)

    assert (meta["models"], meta["needing_attention"], meta["broken"]) == (2, 1, 0)
    attention = meta["attention"]
    assert attention["losses"] == []
    assert any(r.startswith("drift on ") for r in attention["loans"])
    lines = [line for line in meta["table"].splitlines() if line.startswith("| lo")]
    assert [line.split("|")[1].strip() for line in lines] == ["loans", "losses"]  # attention first
    assert "binary" in lines[0] and "AUC" in lines[0] and "DRIFT" in lines[0]
    assert "regression" in lines[1] and "RMSE" in lines[1] and lines[1].rstrip(" |").endswith("ok")
    chart = Path(meta["chart"])
    assert chart == replayed.folder / ".retrain" / "fleet_status.png"
    assert chart.read_bytes().startswith(b"\x89PNG")


@pytest.fixture
def broken_file(replayed: Replayed) -> Iterator[Path]:
    path = replayed.folder / "typo.yaml"
    path.write_text("data: [unclosed\n")
    yield path
    path.unlink()


def test_a_broken_model_file_shows_as_a_flagged_row(replayed: Replayed, broken_file: Path) -> None:
    fleet = load_fleet(replayed.folder)
    meta = materialise(build_overview_defs(fleet), replayed.instance)

    assert (meta["models"], meta["broken"], meta["needing_attention"]) == (3, 1, 2)
    [reason] = meta["attention"]["typo"]
    assert reason.startswith("config error: typo.yaml: ")
    first = [line for line in meta["table"].splitlines() if line.startswith("|")][2]
    assert first.split("|")[1].strip() == "typo"  # broken first


def test_a_model_that_never_ran_has_no_champion_and_its_store_is_not_created(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "fleet"
    (folder / "landing").mkdir(parents=True)
    (folder / "fresh.yaml").write_text(
        "data:\n  landing_dir: landing\n  target_column: label\n  numerical_features: [x]\n"
        "  start_date: 2024-01-01\nmodel:\n  task: binary\n"
    )
    cfg = load_fleet(folder).models["fresh"]
    with dg.instance_for_test() as instance:
        status = collect_status(cfg, instance)
    assert status.champion is None and status.read_error is None and status.newest_day is None
    assert attention(status) == ["no champion"]
    assert not (folder / ".retrain").exists()


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue()


def test_status_command_prints_a_line_per_model_and_exits_1_on_attention(
    replayed: Replayed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(replayed.home))

    code, out = _cli("status", "--config", str(replayed.folder))

    assert code == 1
    rows = {
        line.split()[0]: line
        for line in out.splitlines()
        if line.split()[:1] in (["loans"], ["losses"])
    }
    assert list(rows) == ["loans", "losses"]
    assert "drift on" in rows["loans"] and rows["losses"].rstrip().endswith("ok")
    assert out.splitlines()[-1] == "2 models, 1 need attention, 0 broken"


def test_the_sensor_refreshes_after_a_promotion_once(replayed: Replayed) -> None:
    defs, instance = replayed.defs, replayed.instance
    sensor = defs.resolve_sensor_def(FLEET_STATUS_SENSOR)

    def tick(cursor: str | None):
        context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
        return sensor.evaluate_tick(context)

    first = tick(None)  # the bootstrap promotions
    assert len(first.run_requests) == 1 and first.cursor
    again = tick(first.cursor)
    assert not again.run_requests and again.skip_message
    # a rollback from the command line materialises promoted_model outside any sensor
    instance.report_runless_asset_event(
        dg.AssetMaterialization(dg.AssetKey(["losses", names.PROMOTED_MODEL]))
    )
    later = tick(first.cursor)
    assert len(later.run_requests) == 1
    assert later.run_requests[0].run_key != first.run_requests[0].run_key
    assert not tick(later.cursor).run_requests
