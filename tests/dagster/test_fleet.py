"""A fleet (RETRAIN_CONFIG is a folder of model files) through real Dagster: every model's
definitions under its own names, runs tagged with their model, and models that ingest, drift and
retrain independently (a drift in one never retrains another); a broken model file leaves the
others loaded and shows in the UI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import pytest
import yaml

from retrain_assets import names
from retrain_assets.backtest.replay import Replay
from retrain_assets.definitions import build_definitions, build_fleet_definitions
from retrain_assets.fleet import Fleet, load_fleet
from retrain_assets.lib.data import simulate as sim
from tests.conftest import FAST, SMALL, _merge

ROOT = Path(__file__).resolve().parents[2]
LOANS = dataclasses.replace(SMALL, drift="abrupt", days=8, drift_day=3)
LOSSES = dataclasses.replace(SMALL, drift="none", days=8, task="regression", seed=11)
FLEET_SENSORS = ("landing_sensor", "bootstrap_sensor", "drift_sensor")


def write_model(folder: Path, name: str, spec: sim.SimulationSpec, overrides: dict) -> Path:
    """Simulate a feed into folder/<name>/ and write folder/<name>.yaml for it, leaving the
    workdir, registered model and experiment to the fleet's defaults."""
    sim.simulate(folder / name, spec)
    config = yaml.safe_load((folder / name / "retrain.yaml").read_text())
    config["data"]["landing_dir"] = f"{name}/landing"
    del config["workdir"], config["model"]["registered_name"]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_merge(_merge(config, FAST), overrides)))
    return path


@pytest.fixture(scope="module")
def fleet_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    write_model(folder, "loans", LOANS, {"drift": {"cooldown_days": 1}})
    write_model(folder, "losses", LOSSES, {})
    return folder


@pytest.fixture(scope="module")
def fleet(fleet_folder: Path) -> Fleet:
    return load_fleet(fleet_folder)


def test_each_model_defines_its_assets_jobs_sensors_and_resources_under_its_name(
    fleet: Fleet,
) -> None:
    defs = build_fleet_definitions(fleet)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    single = build_definitions(fleet.models["loans"].model_copy()).resolve_asset_graph()
    # the single-model graph's keys, once per model under its prefix, and nothing unprefixed
    bare = {key.path[-1] for key in single.get_all_asset_keys()}
    fleet_keys = {dg.AssetKey([m, a]) for m in ("loans", "losses") for a in bare}
    assert keys == fleet_keys | {dg.AssetKey(names.FLEET_STATUS)}
    assert graph.get(dg.AssetKey(["loans", "drift_report"])).group_name == "loans_monitoring"
    assert graph.get(dg.AssetKey(["losses", "feature_batch"])).group_name == "losses_ingest"
    # a model's assets depend on its own upstream assets only
    assert graph.get(dg.AssetKey(["losses", "drift_report"])).parent_keys == {
        dg.AssetKey(["losses", "feature_batch"]),
        dg.AssetKey(["losses", "reference_profile"]),
    }
    repo = defs.get_repository_def()
    assert {"loans_retrain_job", "losses_retrain_job", "loans_ingest_job"} <= set(repo.job_names)
    sensors = {s.name for s in repo.sensor_defs}
    per_model = {f"{m}_{s}" for m in ("loans", "losses") for s in names.SENSORS}
    assert sensors == per_model | {names.FLEET_STATUS_SENSOR}
    assert {s.name for s in repo.schedule_defs} == {
        "loans_weekly_retrain_schedule",
        "losses_weekly_retrain_schedule",
        names.FLEET_STATUS_SCHEDULE,
    }
    assert {"loans_store", "losses_store", "loans_registry", "losses_mlflow"} <= set(
        defs.resources or {}
    )
    retrain = defs.resolve_job_def("losses_retrain_job")
    assert retrain.run_tags[names.MODEL_TAG] == "losses"
    assert retrain.run_tags[names.CYCLE_TAG] == "losses"
    ingest = defs.resolve_job_def("loans_ingest_job")
    assert ingest.run_tags[names.MODEL_TAG] == "loans" and names.CYCLE_TAG not in ingest.run_tags


def test_a_broken_model_file_leaves_the_others_loaded_and_shows_its_error(
    fleet_folder: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "fleet"
    folder.mkdir()
    (folder / "loans").symlink_to(fleet_folder / "loans")
    config = yaml.safe_load((fleet_folder / "loans.yaml").read_text())
    (folder / "loans.yaml").write_text(yaml.safe_dump(config))
    config["drift"]["psi_treshold"] = 0.3  # misspelt: an unknown key
    (folder / "typo.yaml").write_text(yaml.safe_dump(config))
    defs = build_fleet_definitions(load_fleet(folder))
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert dg.AssetKey(["loans", "candidate_model"]) in keys
    assert not any(k.path[0] == "typo" and k.path[-1] != "config_error" for k in keys)
    [spec] = [
        s
        for s in defs.resolve_asset_graph().asset_nodes
        if s.key == dg.AssetKey(["typo", "config_error"])
    ]
    assert "typo.yaml" in (spec.description or "")
    assert "drift.psi_treshold" in (spec.description or "")
    assert spec.group_name == names.CONFIG_ERRORS_GROUP


def test_models_ingest_drift_and_retrain_independently(fleet_folder: Path, fleet: Fleet) -> None:
    defs = build_fleet_definitions(fleet)
    with dg.instance_for_test() as instance:
        loop = Replay(defs, instance, keep_results=True)
        loop.settle(tuple(f"{m}_{s}" for m in ("loans", "losses") for s in FLEET_SENSORS))
        runs = [r.dagster_run for r in loop.results]

        # Every run belongs to one model, says so in its tags, and runs that model's job.
        assert runs and all(r.job_name.startswith(r.tags[names.MODEL_TAG] + "_") for r in runs)
        retrains = {
            m: [r.tags[names.REASON_TAG] for r in runs if r.job_name == f"{m}_retrain_job"]
            for m in ("loans", "losses")
        }
        assert retrains["loans"][0] == "bootstrap" and "drift" in retrains["loans"]
        assert retrains["losses"] == ["bootstrap"]  # the drift in loans retrained only loans
        assert all(
            r.tags[names.CYCLE_TAG] == r.tags[names.MODEL_TAG]
            for r in runs
            if r.job_name.endswith("_retrain_job")
        )
        assert all(r.success for r in loop.results)

        for model in ("loans", "losses"):
            days = instance.get_materialized_partitions(dg.AssetKey([model, "drift_report"]))
            assert len(days) == 8
        assert instance.get_latest_materialization_event(dg.AssetKey("drift_report")) is None

    # Each model keeps its state in its own workdir, and its versions in its own registered
    # model and experiment of the fleet's one MLflow store.
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{fleet_folder / '.retrain' / 'mlflow.db'}")
    for model in ("loans", "losses"):
        assert len(list((fleet_folder / ".retrain" / model / "batches" / "features").iterdir()))
        champion = client.get_model_version_by_alias(model, "champion")
        run = client.get_run(champion.run_id)
        assert client.get_experiment(run.info.experiment_id).name == model


def test_the_run_queue_runs_one_cycle_per_model_and_models_side_by_side(
    fleet_folder: Path, tmp_path: Path
) -> None:
    """deploy/dagster.yaml's queue with its total raised to two retrainings at a time, as a fleet
    operator would: the models side by side, one cycle per model."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
        QueuedRunCoordinatorDaemon,
    )

    queue = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["run_coordinator"]
    limits = queue["config"]["tag_concurrency_limits"]
    [total] = [limit for limit in limits if limit["key"] == names.REASON_TAG]
    total["limit"] = 2
    code = tmp_path / "location.py"
    code.write_text(
        "from retrain_assets.definitions import build_fleet_definitions\n"
        "from retrain_assets.fleet import load_fleet\n\n"
        f"defs = build_fleet_definitions(load_fleet({str(fleet_folder)!r}))\n"
    )
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            python_file=str(code), attribute="defs", working_directory=str(tmp_path)
        )
    )
    launcher = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    with (
        dg.instance_for_test(
            overrides={"run_coordinator": queue, "run_launcher": launcher}
        ) as instance,
        create_test_daemon_workspace_context(
            InProcessWorkspaceLoadTarget(origin), instance
        ) as workspace,
    ):
        context = workspace.create_request_context()
        [entry] = context.get_code_location_entries().values()
        [repository] = entry.code_location.get_repositories().values()

        def submit(job_name: str, reason: str) -> str:
            remote = repository.get_full_job(job_name)
            run = create_run_for_test(
                instance,
                job_name=job_name,
                tags={**remote.run_tags, names.REASON_TAG: reason},
                status=dg.DagsterRunStatus.NOT_STARTED,
                remote_job_origin=remote.get_remote_origin(),
                job_code_origin=remote.get_python_origin(),
            )
            return instance.submit_run(run.run_id, context).run_id

        loans_drift = submit("loans_retrain_job", "drift")
        loans_schedule = submit("loans_retrain_job", "schedule")
        losses_drift = submit("losses_retrain_job", "drift")
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        launched = sorted(r.run_id for r in instance.run_launcher.queue())
        assert launched == sorted([loans_drift, losses_drift])  # the models side by side
        assert instance.get_run_by_id(loans_schedule).status == dg.DagsterRunStatus.QUEUED

        instance.report_run_failed(instance.get_run_by_id(loans_drift))  # loans' cycle is over
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        assert instance.run_launcher.queue()[-1].run_id == loans_schedule


def test_rollback_cli_moves_one_fleet_models_champion_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home_instance: dg.DagsterInstance
) -> None:
    from mlflow import MlflowClient

    from tests.dagster.test_rollback_cli import _cli

    folder = tmp_path / "fleet"
    overrides = {"canary": {"mode": "none"}, "gates": {"auc_ratio": 0.5}}  # promoted at once
    write_model(folder, "loans", dataclasses.replace(SMALL, days=2, drift="none"), overrides)
    write_model(folder, "other", dataclasses.replace(LOANS, days=2, drift="none"), overrides)
    monkeypatch.setenv("RETRAIN_CONFIG", str(folder))
    fleet = load_fleet(folder)
    defs = build_fleet_definitions(fleet)
    loop = Replay(defs, home_instance)
    loop.settle(tuple(f"{m}_{s}" for m in ("loans", "other") for s in FLEET_SENSORS[:2]))
    retrain = defs.resolve_job_def("loans_retrain_job").execute_in_process(
        instance=home_instance, tags={names.REASON_TAG: "manual"}, raise_on_error=False
    )
    assert retrain.success
    client = MlflowClient(fleet.models["loans"].tracking_uri)
    assert str(client.get_model_version_by_alias("loans", "champion").version) == "2"

    code, out, _ = _cli("rollback", "--model", "loans", "--reason", "bad batch", "--by", "ops")

    assert (code, out) == (0, "champion v2 -> v1 (bad batch; by ops)\n")
    assert str(client.get_model_version_by_alias("loans", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("other", "champion").version) == "1"
    [run] = home_instance.get_runs(dg.RunsFilter(job_name="loans_rollback_job"))
    assert run.tags[names.MODEL_TAG] == "loans" and run.tags[names.CYCLE_TAG] == "loans"
    promoted = home_instance.get_latest_materialization_event(
        dg.AssetKey(["loans", "promoted_model"])
    )
    assert promoted is not None and promoted.run_id == run.run_id
