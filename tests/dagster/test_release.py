"""Nothing reaches production on trust: the data gate, the AUC gate and the latency gate each stop
a retraining run on their own, leave no `challenger` alias and keep the champion; a gated
challenger is promoted only after the canary (or right away with canary mode none); promotion
refuses a version without gate tags; a rollback is one step and records who and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from retrain_assets import cli
from tests.conftest import FAST, SMALL, START, Loop, Project, failure_message, make_project

BOOT = ("landing_sensor", "bootstrap_sensor")


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _project(tmp_path: Path, spec=SMALL, **sections) -> Project:
    return make_project(tmp_path / "feed", spec, {**FAST, **sections})


def _client(project: Project) -> MlflowClient:
    return MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)


def _alias(project: Project, alias: str) -> str | None:
    try:
        version = _client(project).get_model_version_by_alias("car_loan", alias)
    except Exception:
        return None
    return str(version.version)


def _tags(project: Project, version: str) -> dict[str, str]:
    return dict(_client(project).get_model_version("car_loan", version).tags)


def _retrain(project: Project, instance, run_config: dict | None = None):
    job = project.defs.resolve_job_def("retrain_job")
    return job.execute_in_process(
        instance=instance,
        tags={"retrain/reason": "manual"},
        run_config=run_config or {},
        raise_on_error=False,
    )


def _check(result, name: str):
    [evaluation] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == name
    ]
    return evaluation


def test_bootstrap_passes_every_gate_and_records_them(tmp_path: Path, instance) -> None:
    project = _project(tmp_path)
    Loop(project, instance).settle(BOOT)
    assert _alias(project, "champion") == "1" and _alias(project, "challenger") is None
    tags = _tags(project, "1")
    assert tags["gate.auc"] == "passed" and tags["gate.latency"] == "passed"
    assert float(tags["gate.latency.value"]) < 100  # p95 ms through the pyfunc model
    run = _client(project).get_run(_client(project).get_model_version("car_loan", "1").run_id)
    assert {"test_auc", "p95_latency_ms", "training_time_s"} <= set(run.data.metrics)
    assert run.data.params["strategy"] == "full"


def test_data_gate_stops_the_run_before_training(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, gates={"min_rows": 10**6})
    Loop(project, instance).settle(BOOT)
    [boot] = [r for r in instance.get_runs() if r.job_name == "retrain_job"]
    assert boot.status == dg.DagsterRunStatus.FAILURE
    assert _alias(project, "champion") is None
    assert _client(project).search_model_versions("name='car_loan'") == []
    key = dg.AssetCheckKey(dg.AssetKey("training_dataset"), "training_dataset_data_gate")
    [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed and "min_rows" in evaluation.description
    assert "1000000" in evaluation.description


def test_a_worse_candidate_fails_the_auc_gate_and_the_champion_stays(
    tmp_path: Path, instance
) -> None:
    project = _project(tmp_path)
    Loop(project, instance).settle(BOOT)
    # Shuffle every stored label: the next candidate learns noise.
    rng = np.random.default_rng(0)
    reference = project.cfg.workdir / "batches" / "reference.parquet"
    frame = pd.read_parquet(reference)
    frame["defaulted"] = rng.permutation(frame["defaulted"].to_numpy())
    frame.to_parquet(reference, index=False)
    result = _retrain(project, instance)
    assert not result.success
    gate = _check(result, "candidate_model_auc_vs_champion")
    assert not gate.passed and "champion" in gate.description
    assert _alias(project, "champion") == "1" and _alias(project, "challenger") is None
    assert _tags(project, "2")["gate.auc"] == "failed"


def test_a_slow_model_fails_the_latency_gate(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, gates={"max_p95_latency_ms": 0.001})
    Loop(project, instance).settle(BOOT)
    assert _alias(project, "champion") is None  # even the first model must be fast enough
    [version] = _client(project).search_model_versions("name='car_loan'")
    tags = dict(version.tags)
    assert tags["gate.latency"] == "failed" and tags["gate.auc"] == "passed"
    assert float(tags["gate.latency.value"]) > 0.001


def test_canary_mode_none_promotes_right_after_the_gates(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, canary={"mode": "none"})
    Loop(project, instance).settle(BOOT)
    result = _retrain(
        project, instance, {"ops": {"training_dataset": {"config": {"strategy": "weighted"}}}}
    )
    assert result.success, failure_message(result)
    assert _alias(project, "champion") == "2" and _alias(project, "challenger") is None
    tags = _tags(project, "2")
    assert tags["previous_champion"] == "1" and tags["strategy"] == "weighted"
    event = instance.get_latest_materialization_event(dg.AssetKey("promoted_model"))
    meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert meta["old_version"] == "1" and meta["new_version"] == "2"
    assert "auc_difference_on_test" in meta
    profile = instance.get_latest_materialization_event(dg.AssetKey("reference_profile"))
    assert profile.asset_materialization.metadata["champion_version"].value == "2"


def test_promotion_refuses_a_version_without_gate_tags(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, canary={"mode": "none"})
    Loop(project, instance).settle(BOOT)
    client = _client(project)
    source = client.get_model_version("car_loan", "1")
    rogue = client.create_model_version("car_loan", source.source, run_id=source.run_id)
    client.set_registered_model_alias("car_loan", "challenger", rogue.version)  # by hand
    result = dg.materialize(
        [project.defs.resolve_assets_def("promoted_model")], instance=instance, raise_on_error=False
    )
    assert not result.success and "refusing to promote" in failure_message(result)
    assert _alias(project, "champion") == "1"


def test_shadow_challenger_is_promoted_by_the_canary_then_rolled_back(
    tmp_path: Path, instance, monkeypatch
) -> None:
    spec = dataclasses.replace(SMALL, drift="abrupt", days=10, drift_day=3, rows_per_day=400)
    project = _project(
        tmp_path,
        spec,
        canary={"min_rows": 800, "margin": 0.05},
        drift={**FAST["drift"], "cooldown_days": 1},
    )
    project.hold_back()
    loop = Loop(project, instance)
    sensors = (*Loop.SENSORS, "canary_sensor")
    for i in range(spec.days + spec.label_delay):  # the days go by: each day's files land
        project.land_until(_day(i))
        loop.settle(sensors)
    reasons = [r.dagster_run.tags["retrain/reason"] for r in loop.retrains()]
    assert reasons[0] == "bootstrap" and "drift" in reasons
    canary_runs = [r for r in loop.results if r.dagster_run.job_name == "canary_job"]
    assert canary_runs, "canary_sensor never asked for an evaluation"
    first = canary_runs[0]
    evaluation = _check(first, "canary_evaluation_non_inferior")
    meta = instance.get_latest_materialization_event(dg.AssetKey("canary_evaluation"))
    assert meta.asset_materialization.metadata["n_rows"].value >= 600
    challenger = meta.asset_materialization.metadata["challenger_version"].value
    if evaluation.passed:  # drift made the old champion worse: the challenger wins
        assert _alias(project, "champion") == challenger
        assert _tags(project, challenger)["canary"] == "passed"
    else:
        assert _alias(project, "champion") == "1"
        assert _tags(project, challenger)["canary"] == "failed"
        return
    # One step back, from the command line, against the same instance.
    monkeypatch.setenv("RETRAIN_CONFIG", str(project.cfg.source))
    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(lambda: _Shared(instance)))
    assert cli.main(["rollback", "--reason", "planted regression", "--by", "tester"]) == 0
    assert _alias(project, "champion") == "1"
    tags = _tags(project, challenger)
    assert tags["rollback.reason"] == "planted regression" and tags["rollback.by"] == "tester"
    # The rollback run also refreshed the model's history: days, cycles, a chart.
    history = instance.get_latest_materialization_event(dg.AssetKey("model_history"))
    meta = {k: v.value for k, v in history.asset_materialization.metadata.items()}
    assert meta["days"] >= 10 and meta["retraining_cycles"] >= 2
    assert Path(meta["chart"]).read_bytes().startswith(b"\x89PNG")
    assert "rolled_back_to" in meta["history"] or "| 1 " in meta["history"]


class _Shared:
    """The test's instance, usable as `with DagsterInstance.get() as instance` without closing."""

    def __init__(self, instance) -> None:
        self.instance = instance

    def __enter__(self):
        return self.instance

    def __exit__(self, *exc) -> None:
        return None


def test_guardrail_rolls_back_a_promotion_that_does_worse_live(tmp_path: Path, instance) -> None:
    # Gates loose enough to let a model trained on shuffled labels through: the planted regression.
    project = _project(
        tmp_path,
        canary={"mode": "none"},
        gates={"auc_ratio": 0.5, "auc_floor": 0.0},
        guardrail={"min_rows": 300, "margin": 0.02},
    )
    project.hold_back()
    loop = Loop(project, instance)
    loop.settle(BOOT)
    reference = project.cfg.workdir / "batches" / "reference.parquet"
    frame = pd.read_parquet(reference)
    frame["defaulted"] = np.random.default_rng(1).permutation(frame["defaulted"].to_numpy())
    frame.to_parquet(reference, index=False)
    assert _retrain(project, instance).success
    assert _alias(project, "champion") == "2" and _alias(project, "previous_champion") == "1"

    sensors = ("landing_sensor", "guardrail_sensor")
    for i in range(3):
        project.land_until(_day(i))
        loop.settle(sensors)
    rollbacks = [r for r in loop.results if r.dagster_run.job_name == "rollback_job"]
    assert len(rollbacks) == 1 and rollbacks[0].success
    assert "guardrail" in rollbacks[0].dagster_run.tags["retrain/evidence"]
    assert _alias(project, "champion") == "1" and _alias(project, "previous_champion") is None
    tags = _tags(project, "2")
    assert tags["rollback.by"] == "guardrail_sensor" and "regression" in tags["rollback.reason"]


def test_incremental_strategy_continues_the_champion_on_new_rows(tmp_path: Path, instance) -> None:
    # What is under test is the mechanism, not whether continuing beats refitting here.
    project = _project(tmp_path, canary={"mode": "none"}, gates={"auc_ratio": 0.5})
    Loop(project, instance).settle(BOOT)  # bootstrap on the reference, then every day ingested
    result = _retrain(
        project, instance, {"ops": {"training_dataset": {"config": {"strategy": "incremental"}}}}
    )
    assert result.success, failure_message(result)
    training = instance.get_latest_materialization_event(dg.AssetKey("training_dataset"))
    meta = {k: v.value for k, v in training.asset_materialization.metadata.items()}
    assert meta["strategy"] == "incremental"
    assert meta["window"].split("..")[0] > _tags(project, "1")["data_until"]  # only new rows
    run = _client(project).get_run(_client(project).get_model_version("car_loan", "2").run_id)
    assert run.data.params["strategy"] == "incremental"
    assert run.data.params["strategy.since_day"] == _tags(project, "1")["data_until"]


def test_shadow_rows_read_only_days_after_the_challengers_training_data(
    tmp_path: Path, monkeypatch
) -> None:
    """The canary pairs rows scored after the challenger's training data ends: files of earlier
    days are not even opened (their number grows with history), and rows the challenger may have
    trained on never count."""
    from retrain_assets.assets.release import shadow_rows
    from retrain_assets.resources.storage import LandingStore, write_parquet_atomic

    cfg = _project(tmp_path).cfg
    store = LandingStore(landing_dir=str(cfg.data.landing_dir), workdir=str(tmp_path / "work"))
    id_col, target = cfg.data.id_column, cfg.data.target_column
    predictions = Path(store.workdir) / "monitoring" / "predictions"
    for i in range(6):
        ids = [10 * i + k for k in range(4)]
        write_parquet_atomic(
            pd.DataFrame(
                {
                    id_col: ids,
                    "score": 0.5,
                    "champion_version": "1",
                    "challenger_version": "2",  # as if re-scored: days 0-2 must still not count
                    "champion_score": [0.2, 0.8, 0.3, 0.7],
                    "challenger_score": [0.1, 0.9, 0.2, 0.8],
                }
            ),
            predictions / f"{_day(i)}.parquet",
        )
        write_parquet_atomic(
            pd.DataFrame({id_col: ids, target: [0, 1, 0, 1]}), store.batch_path("labels", _day(i))
        )
    opened: list[str] = []
    real = pd.read_parquet
    monkeypatch.setattr(
        pd, "read_parquet", lambda p, *a, **k: opened.append(Path(p).stem) or real(p, *a, **k)
    )

    rows = shadow_rows(cfg, store, "2", after=_day(2))
    assert sorted(rows[id_col]) == [30, 31, 32, 33, 40, 41, 42, 43, 50, 51, 52, 53]
    assert list(rows["y"][:4]) == [0, 1, 0, 1]
    assert opened and min(opened) > _day(2)
    assert len(shadow_rows(cfg, store, "2")) == 24  # no data_until tag: every day
    assert shadow_rows(cfg, store, "3", after=_day(2)).empty
