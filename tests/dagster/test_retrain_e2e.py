"""The whole first cycle in-process, the way the daemon would drive it: landing files are
ingested by the sensor's runs, the bootstrap sensor starts the first retraining by itself, and
MLflow ends up with one finished run carrying the training set's DVC md5 and a registered version
behind the `champion` alias. A bad file later must leave that champion alone."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import pandas as pd
from mlflow import MlflowClient

from retrain_assets.lib.release import model_store as registry
from retrain_assets.records import last_retrain_day
from tests.conftest import Loop, Project, failure_message, run_requests, tick


def test_first_landing_ends_with_a_champion(project: Project, instance) -> None:
    loop = Loop(project, instance)
    loop.settle(("landing_sensor", "bootstrap_sensor"))
    assert all(r.success for r in loop.results), [failure_message(r) for r in loop.results]
    [retrain] = loop.retrains()
    assert retrain.dagster_run.tags["retrain/reason"] == "bootstrap"
    assert retrain.dagster_run.tags["retrain/data_day"] == "2023-12-31"
    cursor = loop.cursors["landing_sensor"]

    training = instance.get_latest_materialization_event(dg.AssetKey("training_dataset"))
    md5 = training.asset_materialization.metadata["dvc_md5"].value
    assert len(md5) == 32

    client = MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)
    name = project.cfg.model.registered_name
    champion = client.get_model_version_by_alias(name, "champion")
    assert str(champion.version) == "1" and champion.tags["dvc_md5"] == md5
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"  # closed by dagster-mlflow's hook
    assert run.data.tags["dagster_run_id"] == retrain.run_id
    assert run.data.tags["dvc_md5"] == md5 and run.data.params["data.dvc_md5"] == md5
    assert run.data.tags["retrain.reason"] == "bootstrap"
    assert run.data.params["estimator"] == "hist_gradient_boosting"
    assert 0.6 < run.data.metrics["test_auc"] <= 1.0
    assert run.data.metrics["training_time_s"] > 0
    assert run.info.artifact_uri.startswith((project.cfg.workdir / "mlruns").as_uri())

    # The registered model loads (skops, trusted types) and scores a production batch.
    model = registry.load_model(name, "champion")
    batch = pd.read_parquet(project.landing / "features" / "2024-01-02.parquet")
    scores = model.predict_proba(batch[project.cfg.data.features])[:, 1]
    assert scores.shape == (300,) and 0.0 < scores.mean() < 1.0

    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"],
        cwd=project.cfg.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "up to date" in status.stdout

    # A champion exists now: the bootstrap sensor stays quiet.
    assert tick(project, instance, "bootstrap_sensor").run_requests == []

    # A corrupt correction of a landed day fails its own run and touches nothing else.
    bad = project.landing / "features" / "2024-01-05.parquet"
    bad.write_bytes(b"garbage")
    landing = tick(project, instance, "landing_sensor", cursor=cursor)
    [failed] = run_requests(project, instance, landing.run_requests)
    assert not failed.success and str(bad) in failure_message(failed)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    # A later cycle registers a new version; with a champion in place it is not promoted here.
    retrain_job = project.defs.resolve_job_def("retrain_job")
    second = retrain_job.execute_in_process(instance=instance, tags={"retrain/reason": "manual"})
    assert second.success
    versions = client.search_model_versions(f"name='{name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"


def test_failed_cycle_marks_its_mlflow_run_failed(project: Project, instance, monkeypatch) -> None:
    run_requests(project, instance, tick(project, instance, "landing_sensor").run_requests)
    assert instance.get_latest_materialization_event(dg.AssetKey("reference_dataset"))

    def broken_fit(*args, **kwargs):
        raise RuntimeError("training blew up")

    monkeypatch.setattr("retrain_assets.lib.training.fitting.fit_and_evaluate", broken_fit)
    job = project.defs.resolve_job_def("retrain_job")
    result = job.execute_in_process(
        instance=instance,
        tags={"retrain/reason": "manual", "retrain/data_day": "2024-01-03"},
        raise_on_error=False,
    )
    assert not result.success and "training blew up" in failure_message(result)
    # An error, not a gate's verdict: no gates tag, and it does not count as a retraining.
    assert "retrain/gates" not in instance.get_run_by_id(result.run_id).tags
    assert last_retrain_day(instance) is None
    client = MlflowClient(project.cfg.tracking_uri, project.cfg.tracking_uri)
    [run] = client.search_runs(
        [client.get_experiment_by_name("retrain_assets").experiment_id],
        filter_string=f"tags.dagster_run_id = '{result.run_id}'",
    )
    assert run.info.status == "FAILED"
    assert "data.dvc_md5" in run.data.params  # the training set step had logged into it
    assert client.search_registered_models() == []  # nothing registered, no champion
