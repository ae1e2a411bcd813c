"""MLflow as the production profile runs it: a tracking server process (`mlflow server`, bound to
127.0.0.1 on a free port) on a PostgreSQL backend store in its own fresh database, serving
artifacts from a folder of its own. The project's `mlflow.tracking_uri` points at it; the first
retraining logs its model there and sets `champion`, read back through the server's REST API and
from the server's tables and artifact folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from retrain_assets.lib.release import model_store as registry
from tests.conftest import SMALL, Loop, failure_message, make_project
from tests.prod.conftest import pg_query, start_mlflow_server

# The bootstrap retraining is all this test needs.
SPEC = dataclasses.replace(SMALL, days=2, drift="none")


@pytest.fixture
def mlflow_server(tmp_path: Path, pg_database, services):
    db = pg_database("mlflow")
    url, artifacts = start_mlflow_server(services, tmp_path, db)
    return url, db, artifacts


def test_retraining_logs_to_the_tracking_server(tmp_path: Path, instance, mlflow_server) -> None:
    url, db, artifacts = mlflow_server
    project = make_project(tmp_path / "feed", SPEC, {"mlflow": {"tracking_uri": url}})
    assert project.cfg.tracking_uri == url

    loop = Loop(project, instance)
    loop.settle(("landing_sensor", "bootstrap_sensor"))
    assert all(r.success for r in loop.results), [failure_message(r) for r in loop.results]
    [retrain] = loop.retrains()

    client = MlflowClient(url, url)
    name = project.cfg.model.registered_name
    champion = client.get_model_version_by_alias(name, "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dagster_run_id"] == retrain.run_id
    assert 0.6 < run.data.metrics["test_auc"] <= 1.0

    # The server's own store holds them: Postgres tables, and its artifact folder the model files.
    assert pg_query(db, "select name from registered_models") == [(name,)]
    assert pg_query(
        db, f"select alias, version from registered_model_aliases where name = '{name}'"
    )
    [(status,)] = pg_query(db, f"select status from runs where run_uuid = '{run.info.run_id}'")
    assert status == "FINISHED"
    logged = {p.name for p in artifacts.rglob("*") if p.is_file()}
    assert "MLmodel" in logged, sorted(logged)
    assert not (project.cfg.workdir / "mlflow.db").exists()  # nothing fell back to the local store

    # A client elsewhere gets the champion from the server alone (artifacts proxied over HTTP).
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    model = registry.load_model(name, "champion")
    batch = pd.read_parquet(project.landing / "features" / f"{SPEC.start_date}.parquet")
    assert model.predict_proba(batch[project.cfg.data.features]).shape == (len(batch), 2)
