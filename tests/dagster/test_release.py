"""Nothing reaches production on trust: the data gate, the AUC gate and the latency gate each stop
a retraining run on their own, leave no `challenger` alias and keep the champion; a gated
challenger is promoted only after the canary (or right away with canary mode none), and a worse
one is dropped by it; promotion refuses a version without gate tags. (The rollback command is
tests/dagster/test_rollback_cli.py's.)"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from retrain_assets.records import last_retrain_day
from tests.conftest import FAST, SMALL, START, Loop, Project, failure_message, make_project

BOOT = ("landing_sensor", "bootstrap_sensor")
MODEL = "car_loan"


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _project(tmp_path: Path, spec=SMALL, **sections) -> Project:
    return make_project(tmp_path / "feed", spec, {**FAST, **sections})


def _client(project: Project) -> MlflowClient:
    return MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)


def _aliases(project: Project) -> dict[str, str]:
    """Every alias of the registered model and its version ({} while nothing is registered).
    Any other registry error fails the test."""
    client = _client(project)
    if not client.search_registered_models(filter_string=f"name='{MODEL}'"):
        return {}
    model = client.get_registered_model(MODEL)
    return {alias: str(version) for alias, version in model.aliases.items()}


def _tags(project: Project, version: str) -> dict[str, str]:
    return dict(_client(project).get_model_version(MODEL, version).tags)


def _retrain(project: Project, instance, run_config: dict | None = None, tags: dict | None = None):
    job = project.defs.resolve_job_def("retrain_job")
    return job.execute_in_process(
        instance=instance,
        tags={"retrain/reason": "manual", **(tags or {})},
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


def _latest_meta(instance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_bootstrap_passes_every_gate_and_records_them(tmp_path: Path, instance) -> None:
    # The latency gate's pass is pinned by its threshold (an hour), not by this machine's speed.
    project = _project(tmp_path, gates={"max_p95_latency_ms": 3_600_000})
    project.hold_back()  # only the reference: the bootstrap is what is under test
    Loop(project, instance).settle(BOOT)
    assert _aliases(project) == {"champion": "1"}
    tags = _tags(project, "1")
    assert tags["gate.auc"] == "passed" and tags["gate.latency"] == "passed"
    assert tags["gate.latency.threshold"] == "3600000.0000"
    assert 0 < float(tags["gate.latency.value"]) <= 3_600_000  # p95 ms through the pyfunc model
    run = _client(project).get_run(_client(project).get_model_version(MODEL, "1").run_id)
    assert {"test_auc", "p95_latency_ms", "training_time_s"} <= set(run.data.metrics)
    assert run.data.metrics["p95_latency_ms"] == pytest.approx(
        float(tags["gate.latency.value"]), abs=1e-4
    )  # the tag keeps 4 decimals
    assert run.data.params["strategy"] == "full"


def test_data_gate_stops_the_run_before_training(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, gates={"min_rows": 10**6})
    project.hold_back()
    Loop(project, instance).settle(BOOT)
    [boot] = [r for r in instance.get_runs() if r.job_name == "retrain_job"]
    assert boot.status == dg.DagsterRunStatus.FAILURE
    # Stopped by a gate, not an error: tagged, and it counts for cooldowns and the schedule.
    assert boot.tags["retrain/gates"] == "failed"
    assert last_retrain_day(instance) == boot.tags["retrain/data_day"] == "2023-12-31"
    assert _aliases(project) == {}
    assert _client(project).search_model_versions(f"name='{MODEL}'") == []
    key = dg.AssetCheckKey(dg.AssetKey("training_dataset"), "training_dataset_data_gate")
    [record] = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed and "min_rows" in evaluation.description
    assert "1000000" in evaluation.description


def _reference(project: Project) -> pd.DataFrame:
    """The landed reference set as the simulation wrote it (kept aside on first call)."""
    kept = project.root / "reference.original.parquet"
    if not kept.exists():
        pd.read_parquet(project.landing / "reference.parquet").to_parquet(kept, index=False)
    return pd.read_parquet(kept)


def _shuffled(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The same rows with their labels permuted: a model trained on it learns noise (AUC ~0.5)."""
    target = "defaulted"
    out = frame.copy()
    out[target] = np.random.default_rng(seed).permutation(out[target].to_numpy())
    return out


def _land_reference(project: Project, frame: pd.DataFrame) -> None:
    """Replace the landed reference file, as a user would (atomically): a new hash to ingest."""
    path = project.landing / "reference.parquet"
    tmp = path.with_name(".reference.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def test_a_worse_candidate_fails_the_auc_gate_and_the_champion_stays(
    tmp_path: Path, instance
) -> None:
    project = _project(tmp_path)
    project.hold_back()
    loop = Loop(project, instance)
    loop.settle(BOOT)
    # The reference's labels shuffled: the next candidate learns noise, and is tested on the
    # labelled production days (true labels), where the champion ranks far better.
    _land_reference(project, _shuffled(_reference(project)))
    project.land_until(_day(2))
    loop.settle(("landing_sensor",))
    result = _retrain(project, instance, tags={"retrain/data_day": _day(2)})
    assert not result.success
    assert instance.get_run_by_id(result.run_id).tags["retrain/gates"] == "failed"
    assert last_retrain_day(instance) == _day(2)  # a rejected candidate counts as a retraining
    gate = _check(result, "candidate_model_auc_vs_champion")
    assert not gate.passed and "champion" in gate.description
    assert _aliases(project) == {"champion": "1"}
    assert _tags(project, "2")["gate.auc"] == "failed"


def test_a_slow_model_fails_the_latency_gate(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, gates={"max_p95_latency_ms": 0.001})  # 1 µs: no model is that fast
    project.hold_back()
    loop = Loop(project, instance)
    loop.settle(BOOT)
    [boot] = loop.retrains()
    assert _aliases(project) == {}  # even the first model must be fast enough
    [version] = _client(project).search_model_versions(f"name='{MODEL}'")
    tags = dict(version.tags)
    assert tags["gate.latency"] == "failed" and tags["gate.auc"] == "passed"
    assert tags["gate.latency.threshold"] == "0.0010"
    assert float(tags["gate.latency.value"]) > 0.001
    gate = _check(boot, "candidate_model_p95_latency")
    assert not gate.passed and "> max 0.00 ms" in gate.description
    assert gate.metadata["latency_passed"].value is False
    assert gate.metadata["latency_threshold"].value == 0.001


def test_canary_mode_none_promotes_right_after_the_gates(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, canary={"mode": "none"})
    Loop(project, instance).settle(BOOT)
    result = _retrain(
        project, instance, {"ops": {"training_dataset": {"config": {"strategy": "weighted"}}}}
    )
    assert result.success, failure_message(result)
    assert _aliases(project) == {"champion": "2", "previous_champion": "1"}
    tags = _tags(project, "2")
    assert tags["previous_champion"] == "1" and tags["strategy"] == "weighted"
    meta = _latest_meta(instance, "promoted_model")
    assert meta["old_version"] == "1" and meta["new_version"] == "2"
    assert "auc_difference_on_test" in meta
    assert _latest_meta(instance, "reference_profile")["champion_version"] == "2"


def test_promotion_refuses_a_version_without_gate_tags(tmp_path: Path, instance) -> None:
    project = _project(tmp_path, canary={"mode": "none"})
    project.hold_back()
    Loop(project, instance).settle(BOOT)
    client = _client(project)
    source = client.get_model_version(MODEL, "1")
    rogue = client.create_model_version(MODEL, source.source, run_id=source.run_id)
    client.set_registered_model_alias(MODEL, "challenger", rogue.version)  # by hand
    result = dg.materialize(
        [project.defs.resolve_assets_def("promoted_model")], instance=instance, raise_on_error=False
    )
    assert not result.success and "refusing to promote" in failure_message(result)
    assert _aliases(project) == {"champion": "1", "challenger": str(rogue.version)}


# The canary decides on one labelled day of shadow rows (300) with DeLong's paired test; the two
# models differ by construction (one learnt from shuffled labels, AUC ~0.5 against ~0.8), so
# each outcome is certain, not a matter of this seed.
CANARY = {"min_rows": 300, "margin": 0.02, "confidence": 0.95, "method": "delong"}


def _challenger_through_the_canary(project: Project, instance, first: pd.DataFrame, second):
    """v1 bootstrapped on `first`, v2 retrained on `second` (a gated challenger in shadow), then
    the first production day and its labels land: canary_sensor asks for the canary run."""
    project.hold_back()
    _land_reference(project, first)
    loop = Loop(project, instance)
    loop.settle(BOOT)
    assert _aliases(project) == {"champion": "1"}
    _land_reference(project, second)
    loop.settle(("landing_sensor",))  # the new reference is ingested
    result = _retrain(project, instance)
    assert result.success, failure_message(result)
    assert _aliases(project) == {"champion": "1", "challenger": "2"}
    project.land_until(_day(1))  # features of days 0-1; labels of day 0 (label delay 1)
    loop.settle(("landing_sensor", "canary_sensor"))
    [canary] = [r for r in loop.results if r.dagster_run.job_name == "canary_job"]
    assert canary.dagster_run.tags["retrain/reason"] == "canary"
    return canary


def test_canary_promotes_a_better_challenger(tmp_path: Path, instance) -> None:
    # The first champion learnt noise (floor 0 lets it through); the challenger learns the truth.
    project = _project(tmp_path, gates={"auc_floor": 0.0}, canary=CANARY)
    true = _reference(project)
    canary = _challenger_through_the_canary(project, instance, _shuffled(true), true)
    assert canary.success, failure_message(canary)
    check = _check(canary, "canary_evaluation_non_inferior")
    assert check.passed and "non-inferior: the challenger may be promoted" in check.description
    evaluation = _latest_meta(instance, "canary_evaluation")
    assert evaluation["n_rows"] == 300
    assert (evaluation["challenger_version"], evaluation["champion_version"]) == ("2", "1")
    assert evaluation["difference"] > 0.15 and evaluation["ci_low"] > -CANARY["margin"]
    assert _aliases(project) == {"champion": "2", "previous_champion": "1"}
    assert _tags(project, "2")["canary"] == "passed"
    promoted = _latest_meta(instance, "promoted_model")
    assert promoted["decision"] == "promote"
    assert (promoted["old_version"], promoted["new_version"]) == ("1", "2")
    assert promoted["auc_difference_live"] == pytest.approx(evaluation["difference"], abs=1e-6)


def test_canary_rejects_a_worse_challenger(tmp_path: Path, instance) -> None:
    # Gates loose enough to let a model trained on shuffled labels through: only the canary,
    # on live labels, can tell it is worse.
    project = _project(tmp_path, gates={"auc_ratio": 0.5, "auc_floor": 0.0}, canary=CANARY)
    true = _reference(project)
    canary = _challenger_through_the_canary(project, instance, true, _shuffled(true))
    assert not canary.success  # the blocking check stops the run before promoted_model
    check = _check(canary, "canary_evaluation_non_inferior")
    assert not check.passed
    assert "not shown non-inferior: keep the champion" in check.description
    assert check.metadata["challenger_version"].value == "2"
    assert check.metadata["margin"].value == CANARY["margin"]
    evaluation = _latest_meta(instance, "canary_evaluation")
    assert evaluation["n_rows"] == 300 and evaluation["non_inferior"] is False
    assert evaluation["difference"] < -0.15 and evaluation["ci_low"] <= -CANARY["margin"]
    assert evaluation["reason"] == check.description
    assert _aliases(project) == {"champion": "1"}  # challenger dropped, champion unchanged
    tags = _tags(project, "2")
    assert tags["canary"] == "failed" and tags["canary.champion_version"] == "1"
    assert not canary.asset_materializations_for_node("promoted_model")


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
    _land_reference(project, _shuffled(_reference(project), seed=1))
    loop.settle(("landing_sensor",))
    assert _retrain(project, instance).success
    assert _aliases(project) == {"champion": "2", "previous_champion": "1"}

    sensors = ("landing_sensor", "guardrail_sensor")
    for i in range(3):
        project.land_until(_day(i))
        loop.settle(sensors)
    rollbacks = [r for r in loop.results if r.dagster_run.job_name == "rollback_job"]
    assert len(rollbacks) == 1 and rollbacks[0].success
    assert "guardrail" in rollbacks[0].dagster_run.tags["retrain/evidence"]
    assert _aliases(project) == {"champion": "1"}
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
    run = _client(project).get_run(_client(project).get_model_version(MODEL, "2").run_id)
    assert run.data.params["strategy"] == "incremental"
    assert run.data.params["strategy.since_day"] == _tags(project, "1")["data_until"]


def test_shadow_rows_read_only_days_after_the_challengers_training_data(
    tmp_path: Path, monkeypatch
) -> None:
    """The canary pairs rows scored after the challenger's training data ends: files of earlier
    days are not even opened (their number grows with history), and rows the challenger may have
    trained on never count."""
    from retrain_assets.lib.files import write_parquet as write_parquet_atomic
    from retrain_assets.release.canary import shadow_rows
    from retrain_assets.resources.landing import LandingStore

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
