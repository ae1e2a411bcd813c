"""Faults the retraining loop must survive without moving the champion or leaving an alias on a
half-made model:

- a retraining process killed with SIGKILL (while training; after registering, before its gates)
  leaves the champion and every alias as they were, and the next run completes;
- an unreachable MLflow is retried with exponential back-off, then fails naming the tracking URI;
- a failed artifact write (read-only artifact folder) fails the run and registers nothing;
- two retrain requests at once: the repo's run queue launches one, the other waits; a drift day
  never yields two runs (sensor cooldown, then the daemon's run-key dedupe);
- a sensor that raises mid-tick loses nothing: the daemon keeps the old cursor, the next tick
  resumes from it;
- promoting twice is a no-op; re-materialising a day's partition writes the same files.

The invariant checked after each: every alias points at a version that recorded passed gates and
whose artifacts match the hash recorded at registration (it loads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.test_utils import (
    create_run_for_test,
    create_test_daemon_workspace_context,
    freeze_time,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster._daemon.sensor import execute_sensor_iteration

from retrain_assets.lib.release import promotion
from retrain_assets.lib.release.model_store import ARTIFACT_HASH_TAG
from retrain_assets.names import REASON_TAG
from retrain_assets.resources.model_registry import ModelRegistry
from tests.conftest import Project, failure_message, make_project

ROOT = Path(__file__).resolve().parents[2]
RUN_KEY = "dagster/run_key"


# --- helpers ----------------------------------------------------------------------------------


def _registry(project: Project) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=project.cfg.tracking_uri, registered_name=project.cfg.model.registered_name
    )


def _versions(project: Project) -> list[str]:
    name = project.cfg.model.registered_name
    found = _registry(project).client().search_model_versions(f"name='{name}'")
    return sorted((str(v.version) for v in found), key=int)


def _aliases(project: Project) -> dict[str, str]:
    registry = _registry(project)
    model = registry.client().get_registered_model(registry.registered_name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def assert_aliases_sound(project: Project) -> dict[str, str]:
    """Every alias points at a version with passed gates whose artifacts match their recorded
    hash and load (skops); the aliases."""
    registry = _registry(project)
    aliases = _aliases(project)
    for alias, version in aliases.items():
        tags = registry.version_tags(version)
        assert promotion.missing_gates(tags) == [], f"{alias} -> v{version}: {tags}"
        registry.load(version)  # raises unless the artifacts match the registration hash
    return aliases


def _retrain(project: Project, instance: dg.DagsterInstance, reason: str = "manual"):
    return project.defs.resolve_job_def("retrain_job").execute_in_process(
        instance=instance, tags={REASON_TAG: reason}, raise_on_error=False
    )


def _bootstrap(project: Project, instance: dg.DagsterInstance) -> None:
    """The reference ingested and profiled, the first model trained and promoted (v1)."""
    project.defs.resolve_job_def("reference_job").execute_in_process(instance=instance)
    result = _retrain(project, instance, "bootstrap")
    assert result.success, failure_message(result)
    assert _aliases(project) == {"champion": "1"}


def _events(result, event_type: str) -> list:
    return [e for e in result.all_events if e.event_type_value == event_type]


@pytest.fixture(autouse=True)
def one_openmp_thread(monkeypatch):
    """Single-row predictions (the latency gate) through HistGradientBoosting's OpenMP threads
    cost ~200 ms each on a busy 2-core machine, ~2 ms on one thread: one thread here and in the
    child processes keeps a retraining to seconds. Nothing under test depends on it."""
    from threadpoolctl import threadpool_limits

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@dataclass
class Champion:
    """A project whose first model is trained, gated and promoted, with its Dagster instance."""

    project: Project
    instance: dg.DagsterInstance
    home: Path


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Iterator[Champion]:
    """Shared by the tests that start from a champion (bootstrapping costs a retraining). Each
    of them leaves the champion in place and asserts only relative to the state it found."""
    from threadpoolctl import threadpool_limits

    root = tmp_path_factory.mktemp("champion")
    with dg.instance_for_test() as instance, threadpool_limits(limits=1, user_api="openmp"):
        project = make_project(root / "feed")
        _bootstrap(project, instance)
        yield Champion(project, instance, root)


# --- kill -9 ------------------------------------------------------------------------------------

KILLED_RUN = """
import importlib, os, sys, time
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from retrain_assets.config import load_config
from retrain_assets.definitions import build_definitions

config, home, marker, fault_point = sys.argv[1:]
module_name, name = fault_point.rsplit(".", 1)
module = importlib.import_module(module_name)


def stop_here(*args, **kwargs):
    Path(marker).write_text(str(os.getpid()))
    while True:  # until SIGKILL
        time.sleep(1)


setattr(module, name, stop_here)
instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(home))
job = build_definitions(load_config(config)).resolve_job_def("retrain_job")
job.execute_in_process(instance=instance, tags={"retrain/reason": "manual"})
"""


TRAINING = "retrain_assets.lib.training.fitting.fit_and_evaluate"  # the fit itself
# after registering, before any gate tag
GATES = "retrain_assets.lib.release.model_gates.pyfunc_latency_ms"


def _kill_retrain_at(project: Project, instance, fault_point: str, workdir: Path) -> str:
    """Run retrain_job in a child process against the same instance and stores, SIGKILL it once
    it reached `fault_point`; the killed Dagster run's id."""
    script, marker = workdir / "killed_run.py", workdir / f"{fault_point}.reached"
    script.write_text(KILLED_RUN)
    before = {r.run_id for r in instance.get_runs()}
    with (workdir / f"{fault_point}.log").open("w") as log:
        child = subprocess.Popen(
            [sys.executable, str(script), str(project.cfg.source), instance.root_directory,
             str(marker), fault_point],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
            while not marker.exists():
                assert child.poll() is None, (workdir / f"{fault_point}.log").read_text()[-3000:]
                assert time.monotonic() < deadline, f"{fault_point} never reached"
                time.sleep(0.2)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.poll() is None and not marker.exists():
                child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    [run] = [r for r in instance.get_runs() if r.run_id not in before]
    return run.run_id


def test_a_killed_retraining_leaves_no_trace_on_the_aliases_and_a_rerun_completes(
    champion: Champion, tmp_path: Path
) -> None:
    project, instance = champion.project, champion.instance
    versions, aliases = _versions(project), assert_aliases_sound(project)
    champion_tags = _registry(project).version_tags(aliases["champion"])

    # Killed while training: nothing registered, no alias moved.
    killed = _kill_retrain_at(project, instance, TRAINING, tmp_path)
    # The run worker died without a word: Dagster still records the run as started (in a
    # deployment, run monitoring or an operator marks it failed).
    assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED
    assert _versions(project) == versions
    assert assert_aliases_sound(project) == aliases

    # Killed after registering its model, before any gate was written: the version exists
    # (whole: its artifacts match the hash registered with it) but no alias points at it.
    _kill_retrain_at(project, instance, GATES, tmp_path)
    [orphan] = [v for v in _versions(project) if v not in versions]
    orphan_tags = _registry(project).version_tags(orphan)
    assert promotion.missing_gates(orphan_tags) == ["gate.auc/gate.metric", "gate.latency"]
    assert ARTIFACT_HASH_TAG in orphan_tags
    _registry(project).verify(orphan)
    assert assert_aliases_sound(project) == aliases
    assert _registry(project).version_tags(aliases["champion"]) == champion_tags

    # The next run completes and gates its own candidate (the challenger, in shadow mode); the
    # champion stays, the orphan stays unaliased.
    rerun = _retrain(project, instance)
    assert rerun.success, failure_message(rerun)
    [new] = [v for v in _versions(project) if v not in [*versions, orphan]]
    assert assert_aliases_sound(project) == {**aliases, "challenger": new}


# --- MLflow unreachable -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


def test_unreachable_mlflow_is_retried_with_backoff_then_fails_naming_the_uri(
    tmp_path: Path, instance, monkeypatch
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries: none
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    project = make_project(
        tmp_path / "feed",
        overrides={"mlflow": {"tracking_uri": uri, "retries": 2, "retry_delay_seconds": 0.05}},
    )
    reference = project.defs.resolve_job_def("reference_job").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("reference_dataset")]
    )
    assert reference.success

    result = _retrain(project, instance)

    assert not result.success
    retries = _events(result, "STEP_UP_FOR_RETRY")
    assert [e.step_key for e in retries] == ["training_dataset", "training_dataset"]
    # Exponential back-off as recorded on the events: 1x, then 3x the base delay.
    waits = [e.event_specific_data.seconds_to_wait for e in retries]
    assert waits == pytest.approx([0.05, 0.15])
    assert all(uri in e.event_specific_data.error.cause.message for e in retries)
    [failure] = _events(result, "STEP_FAILURE")
    assert failure.step_key == "training_dataset"
    assert "Exceeded max_retries of 2" in failure.step_failure_data.error.message
    message = failure_message(result)
    assert f"MLflow tracking server {uri} is unreachable" in message
    assert "Connection refused" in message or "ConnectionRefused" in message
    assert not _events(result, "HOOK_ERRORED")  # the failure hook does not try MLflow again
    # Nothing after it ran: no candidate, no promotion.
    started = [
        e.step_key for e in _events(result, "STEP_START") + _events(result, "STEP_RESTARTED")
    ]
    assert started == ["training_dataset"] * 3


# --- a failed artifact write --------------------------------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path):
    """Make a folder tree read-only for this process. Root ignores permission bits, so for root
    the folders are also made immutable (chattr +i); undone on exit."""
    folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    modes = {p: p.stat().st_mode for p in folders}
    immutable = False
    try:
        for path in folders:
            path.chmod(0o555)
        if os.geteuid() == 0:
            chattr = shutil.which("chattr")
            done = (
                chattr
                and subprocess.run(
                    [chattr, "-R", "+i", str(folder)], capture_output=True
                ).returncode
                == 0
            )
            if not done:
                pytest.skip("running as root without chattr: a read-only folder is writable")
            immutable = True
        probe = folder / "probe"
        with pytest.raises(OSError):
            probe.mkdir()
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)
        for path, mode in modes.items():
            path.chmod(mode)


def test_a_failed_artifact_write_fails_the_run_and_registers_nothing(
    champion: Champion,
) -> None:
    project, instance = champion.project, champion.instance
    versions, aliases = _versions(project), assert_aliases_sound(project)
    artifacts = project.cfg.workdir / "mlruns"
    with read_only(artifacts):
        result = _retrain(project, instance)
    assert not result.success
    message = failure_message(result)
    assert [e.step_key for e in _events(result, "STEP_FAILURE")] == ["candidate_model"]
    assert "Permission denied" in message or "Operation not permitted" in message
    assert str(artifacts) in message
    assert not _events(result, "STEP_UP_FOR_RETRY")  # not an outage: no retry
    assert _versions(project) == versions  # the half-written model was never registered
    assert assert_aliases_sound(project) == aliases


# --- two requests at once; one run per drift day ------------------------------------------------


def _repo_run_queue() -> dict:
    """The run coordinator exactly as the repo's dagster.yaml configures it."""
    return yaml.safe_load((ROOT / "dagster.yaml").read_text())["run_coordinator"]


def test_two_retrain_requests_at_once_one_runs_the_other_waits(
    project: Project, tmp_path: Path
) -> None:
    launcher = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    with daemon_workspace(project, tmp_path, run_launcher=launcher) as (instance, workspace):
        context = workspace.create_request_context()
        [entry] = context.get_code_location_entries().values()
        [repository] = entry.code_location.get_repositories().values()

        def submit(job_name: str, tags: dict[str, str]) -> str:
            remote = repository.get_full_job(job_name)
            run = create_run_for_test(
                instance,
                job_name=job_name,
                tags=tags,
                status=dg.DagsterRunStatus.NOT_STARTED,
                remote_job_origin=remote.get_remote_origin(),
                job_code_origin=remote.get_python_origin(),
            )
            return instance.submit_run(run.run_id, context).run_id

        drift = submit("retrain_job", {REASON_TAG: "drift"})
        performance = submit("retrain_job", {REASON_TAG: "performance"})
        ingest = submit("ingest_job", {"landing/kind": "features"})
        statuses = {instance.get_run_by_id(r).status for r in (drift, performance, ingest)}
        assert statuses == {dg.DagsterRunStatus.QUEUED}

        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        list(daemon.run_iteration(workspace))
        # One retraining (whatever its reason) and the ingest run start; the second retraining
        # waits on the tag limit (two slots: without the limit both retrainings would start and
        # the ingest run would wait).
        assert sorted(r.run_id for r in instance.run_launcher.queue()) == sorted([drift, ingest])
        assert instance.get_run_by_id(performance).status == dg.DagsterRunStatus.QUEUED
        list(daemon.run_iteration(workspace))
        assert len(instance.run_launcher.queue()) == 2  # still waiting while the first runs

        instance.report_run_failed(instance.get_run_by_id(drift))  # the first one is over
        list(daemon.run_iteration(workspace))
        assert instance.run_launcher.queue()[-1].run_id == performance


@contextlib.contextmanager
def daemon_workspace(project: Project, folder: Path, **overrides):
    """An instance with the repo's run queue (and `overrides`) and a daemon workspace loading
    this project's code location in-process; yields (instance, workspace)."""
    code = folder / "location.py"
    code.write_text(
        "from retrain_assets.config import load_config\n"
        "from retrain_assets.definitions import build_definitions\n\n"
        f"defs = build_definitions(load_config({str(project.cfg.source)!r}))\n"
    )
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(python_file=str(code), attribute="defs", working_directory=str(folder))
    )
    with (
        dg.instance_for_test(
            overrides={"run_coordinator": _repo_run_queue(), **overrides}
        ) as instance,
        create_test_daemon_workspace_context(
            InProcessWorkspaceLoadTarget(origin), instance
        ) as workspace,
    ):
        yield instance, workspace


@contextlib.contextmanager
def sensor_daemon(project: Project, folder: Path):
    """daemon_workspace; yields (instance, tick) where tick() runs one sensor-daemon iteration a
    minute of frozen time after the previous one (past every sensor's minimum interval)."""
    clock = [time.time()]
    logger = logging.getLogger("test_faults.sensor_daemon")
    with daemon_workspace(project, folder) as (instance, workspace):

        def tick() -> None:
            clock[0] += 60
            with freeze_time(clock[0]):
                list(execute_sensor_iteration(workspace, logger, None, None))

        yield instance, tick


def _sensor_state(instance: dg.DagsterInstance, name: str):
    [state] = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == name
    ]
    return state


def _latest_tick(instance: dg.DagsterInstance, name: str):
    state = _sensor_state(instance, name)
    return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)[0]


def _drift(instance: dg.DagsterInstance, day: str, drifted: bool = True) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "drift_report",
            partition=day,
            metadata={"drifted": drifted, "evidence": f"test drift on {day}" if drifted else ""},
        )
    )


def _drift_runs(instance: dg.DagsterInstance) -> list[str]:
    runs = instance.get_runs(dg.RunsFilter(job_name="retrain_job"))
    return sorted(r.tags.get(RUN_KEY, "") for r in runs)


def test_a_drift_day_never_yields_two_runs(project: Project, tmp_path: Path) -> None:
    with sensor_daemon(project, tmp_path) as (instance, tick):
        _drift(instance, "2024-01-02")
        _drift(instance, "2024-01-03")
        tick()
        assert _drift_runs(instance) == ["drift@2024-01-03"]
        [run] = instance.get_runs(dg.RunsFilter(job_name="retrain_job"))
        assert run.status == dg.DagsterRunStatus.QUEUED

        # The same day's report again (a corrected landing file): the sensor holds back, the
        # day's retraining is already queued.
        _drift(instance, "2024-01-03")
        tick()
        assert _drift_runs(instance) == ["drift@2024-01-03"]

        # Even once that run failed (no longer counted by the cooldown), the sensor's request
        # for the same day carries the same run key, and the daemon skips it.
        instance.report_run_failed(run)
        _drift(instance, "2024-01-03")
        tick()
        latest = _latest_tick(instance, "drift_sensor")
        assert latest.run_keys == ["drift@2024-01-03"] and latest.run_ids == []
        assert _drift_runs(instance) == ["drift@2024-01-03"]


def test_a_sensor_that_raises_keeps_its_cursor_and_the_next_tick_resumes(
    project: Project, tmp_path: Path, monkeypatch
) -> None:
    import retrain_assets.training.triggers as sensors

    with sensor_daemon(project, tmp_path) as (instance, tick):
        _drift(instance, "2024-01-02")
        tick()
        good = _sensor_state(instance, "drift_sensor").instigator_data.cursor
        assert json.loads(good)["days"] == {"2024-01-02": [True, "test drift on 2024-01-02"]}

        _drift(instance, "2024-01-03")
        _drift(instance, "2024-01-04", drifted=False)
        real = sensors.new_materializations

        def dies_mid_tick(instance, asset, after):
            records = real(instance, asset, after)
            if asset != dg.AssetKey("drift_report"):  # other sensors read as usual
                yield from records
                return
            yield next(records)  # drift_sensor has taken in 2024-01-03 ...
            raise RuntimeError("event log unavailable")  # ... and dies before the end

        monkeypatch.setattr(sensors, "new_materializations", dies_mid_tick)
        tick()
        failed = _latest_tick(instance, "drift_sensor")
        assert failed.status == TickStatus.FAILURE and "event log unavailable" in str(failed.error)
        assert _sensor_state(instance, "drift_sensor").instigator_data.cursor == good
        assert _drift_runs(instance) == []

        monkeypatch.setattr(sensors, "new_materializations", real)
        tick()
        cursor = json.loads(_sensor_state(instance, "drift_sensor").instigator_data.cursor)
        assert sorted(cursor["days"]) == ["2024-01-02", "2024-01-03", "2024-01-04"]
        latest = instance.fetch_materializations(dg.AssetKey("drift_report"), limit=1).records[0]
        assert cursor["after"] == latest.storage_id
        assert _drift_runs(instance) == ["drift@2024-01-03"]  # nothing skipped


# --- idempotence --------------------------------------------------------------------------------


def _materialisation(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _all_tags(project: Project) -> dict[str, dict[str, str]]:
    return {v: _registry(project).version_tags(v) for v in _versions(project)}


def test_promoting_twice_and_rematerialising_a_day_change_nothing(champion: Champion) -> None:
    project, instance = champion.project, champion.instance
    aliases, tags = assert_aliases_sound(project), _all_tags(project)

    promoted_model = project.defs.resolve_assets_def("promoted_model")
    for _ in range(2):
        again = dg.materialize([promoted_model], instance=instance)
        assert again.success
        meta = _materialisation(instance, "promoted_model")
        assert meta["decision"] == "keep" and meta["aliases_changed"] is False
        assert meta["champion_version"] == aliases["champion"]
        assert _aliases(project) == aliases and _all_tags(project) == tags

    # One day's partition, materialised twice the way landing_sensor asks for it: same files.
    day = "2024-01-02"
    work = project.cfg.workdir
    outputs = [
        work / "batches" / "features" / f"{day}.parquet",
        work / "monitoring" / "drift" / f"{day}.json",
        work / "monitoring" / "predictions" / f"{day}.parquet",
    ]
    assets = ("feature_batch", "drift_report", "predictions")
    ingest = project.defs.resolve_job_def("ingest_job")
    contents, metadata = [], []
    for _ in range(2):
        result = ingest.execute_in_process(
            instance=instance,
            partition_key=day,
            asset_selection=[dg.AssetKey(a) for a in assets],
        )
        assert result.success, failure_message(result)
        contents.append([path.read_bytes() for path in outputs])
        metadata.append({asset: _materialisation(instance, asset) for asset in assets})
    assert contents[0] == contents[1]
    assert metadata[0] == metadata[1]
    assert assert_aliases_sound(project) == aliases
