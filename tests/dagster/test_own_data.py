"""Someone else's data, not the simulator's: a different domain, CSV files, string ids, a string
target, no timestamp column, and a config that lives apart from its data. It must load, ingest
and produce a champion with nothing but the YAML contract changed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import yaml
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer

from retrain_assets.config import load_config
from retrain_assets.definitions import build_definitions
from tests.conftest import Loop, Project, failure_message

START = dt.date(2024, 3, 1)


def _write_feed(root: Path) -> Path:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    numerical = [c for c in frame.columns if c != "target"][:12]
    rng = np.random.default_rng(3)
    frame = frame[[*numerical, "target"]].assign(
        patient_id=[f"P{i:05d}" for i in range(len(frame))],
        clinic=rng.choice(["north", "south", "mobile"], size=len(frame)),
        diagnosis=np.where(frame["target"] == 0, "malignant", "benign"),
    )
    features = ["patient_id", *numerical, "clinic"]
    incoming = root / "data" / "incoming"
    (incoming / "features").mkdir(parents=True)
    (incoming / "labels").mkdir()
    frame.iloc[:300][[*features, "diagnosis"]].to_csv(incoming / "reference.csv", index=False)
    for i, chunk in enumerate(np.array_split(frame.iloc[300:], 5)):
        day = START + dt.timedelta(days=i)
        chunk[features].to_csv(incoming / "features" / f"{day}.csv", index=False, sep=";")
        label_day = day + dt.timedelta(days=1)
        chunk[["patient_id", "diagnosis"]].to_csv(
            incoming / "labels" / f"{label_day}.csv", index=False
        )
    config = {
        "data": {
            "landing_dir": "../data/incoming",
            "id_column": "patient_id",
            "target_column": "diagnosis",
            "positive_label": "malignant",
            "numerical_features": numerical,
            "categorical_features": ["clinic"],
            "start_date": START.isoformat(),
        },
        "workdir": "../state",
        "model": {"registered_name": "tumour", "estimator": "logistic_regression"},
        "ingest": {"sensor_interval_seconds": 5},
        # a small data set (the default data gate wants 500 rows); a loaded box must not fail it
        "gates": {"min_rows": 200, "max_p95_latency_ms": 5000},
    }
    path = root / "config" / "retrain.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(config))
    return path


def test_foreign_csv_feed_loads_ingests_and_trains(tmp_path: Path, instance) -> None:
    cfg = load_config(_write_feed(tmp_path))
    assert cfg.data.landing_dir == tmp_path / "data" / "incoming"
    assert cfg.workdir == tmp_path / "state"
    project = Project(tmp_path, cfg, build_definitions(cfg))

    loop = Loop(project, instance)
    loop.settle()
    assert all(r.success for r in loop.results), [failure_message(r) for r in loop.results]
    files = sorted(
        r.dagster_run.tags["landing/file"]
        for r in loop.results
        if r.dagster_run.tags.get("landing/file")
    )
    assert len(files) == 11  # reference + 5 feature days + 5 label days
    batch = pd.read_parquet(cfg.workdir / "batches" / "features" / "2024-03-02.parquet")
    assert batch["patient_id"].str.startswith("P").all()
    labels = pd.read_parquet(cfg.workdir / "batches" / "labels" / "2024-03-02.parquet")
    assert set(labels["diagnosis"].unique()) <= {0, 1}

    [retrain] = loop.retrains()
    assert retrain.dagster_run.tags["retrain/reason"] == "bootstrap"
    client = MlflowClient(cfg.tracking_uri, cfg.tracking_uri)
    champion = client.get_model_version_by_alias("tumour", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.params["estimator"] == "logistic_regression"
    assert run.data.metrics["test_auc"] > 0.9
    # Monitoring ran on the foreign feed too, with Evidently's report linked from the metadata.
    report = instance.get_latest_materialization_event(dg.AssetKey("drift_report"))
    html = Path(report.asset_materialization.metadata["evidently_report"].value)
    assert html.is_file() and "mean_radius" in html.read_text(errors="ignore")
    assert instance.get_latest_materialization_event(dg.AssetKey("performance_report"))
