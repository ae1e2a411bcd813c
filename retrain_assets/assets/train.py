"""Training: the versioned training set and the candidate model of one retraining cycle.

Both steps run in the retraining job, which is one MLflow run (dagster-mlflow): the training set's
DVC md5 and window are logged there, then the candidate's parameters, metrics and model.
"""

import dagster as dg
import pandas as pd

from retrain_assets.config import RetrainConfig
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.mlflow import MlflowTracking
from retrain_assets.resources.storage import LandingStore, write_parquet_atomic
from retrain_assets.tags import EVIDENCE_TAG, REASON_TAG

# lib.training and lib.registry import sklearn/mlflow (seconds): they are imported inside the
# asset functions, so loading the code location in every Dagster process stays fast.


def labelled_rows(cfg: RetrainConfig, store: LandingStore) -> pd.DataFrame:
    """Every stored production row that has a stored label, with the day it was observed."""
    from retrain_assets.lib import training

    id_col = cfg.data.id_column
    label_days = store.batch_days("labels")
    feature_days = store.batch_days("features")
    if not label_days or not feature_days:
        return pd.DataFrame()
    labels = pd.concat([store.read_batch("labels", d) for d in label_days], ignore_index=True)
    # A later label file for the same id corrects an earlier one.
    labels = labels.drop_duplicates(subset=[id_col], keep="last")
    frames = []
    for day in feature_days:
        batch = store.read_batch("features", day)
        batch[training.DAY] = day
        frames.append(batch)
    features = pd.concat(frames, ignore_index=True)
    return training.join_labels(features, labels, id_col)


def build_train_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    data = cfg.data

    @dg.asset(
        group_name="training",
        kinds={"parquet", "dvc"},
        deps=["reference_dataset", "feature_batch", "label_batch"],
    )
    def training_dataset(
        context: dg.AssetExecutionContext,
        store: LandingStore,
        dvc: DvcRepository,
        mlflow: MlflowTracking,
    ) -> dg.Output[dict]:
        """Reference set + every labelled production row, split by time, versioned with DVC.

        Rebuilt at the start of every retraining run."""
        from retrain_assets.lib import training

        rows = training.assemble(
            store.read_reference(),
            labelled_rows(cfg, store),
            target_column=data.target_column,
            timestamp_column=data.timestamp_column,
            start_date=data.start_date,
            test_days=cfg.model.test_days,
            reference_test_share=cfg.model.reference_test_share,
        )
        path = store.path_for("training", "training_set.parquet")
        write_parquet_atomic(rows, path)
        md5 = dvc.add(path)
        counts = rows[training.SPLIT].value_counts()
        window = f"{rows[training.DAY].min()}..{rows[training.DAY].max()}"
        mlflow.tracker.log_params(
            {"data.dvc_md5": md5, "data.rows": len(rows), "data.window": window}
        )
        mlflow.tracker.set_tags({"dvc_md5": md5, "data_window": window})
        value = {"path": str(path), "md5": md5, "rows": len(rows), "window": window}
        return dg.Output(
            value,
            metadata={
                "dvc_md5": md5,
                "training_set_file": dg.MetadataValue.path(str(path)),
                "dagster/row_count": len(rows),
                "train_rows": int(counts.get("train", 0)),
                "test_rows": int(counts.get("test", 0)),
                "positive_rate": float(rows[training.TARGET].mean()),
                "window": window,
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(mlflow.run_id)),
            },
        )

    @dg.asset(group_name="training", kinds={"sklearn", "mlflow"})
    def candidate_model(
        context: dg.AssetExecutionContext,
        training_dataset: dict,
        mlflow: MlflowTracking,
    ) -> dg.Output[dict]:
        """A model fitted on the training set's train split, scored on its test split, logged to
        MLflow (skops) and registered as a new version. Refreshed by every retraining run."""
        from retrain_assets.lib import registry, training

        rows = pd.read_parquet(training_dataset["path"])
        fit = training.fit_and_evaluate(
            rows,
            data.numerical_features,
            data.categorical_features,
            cfg.model.estimator,
            cfg.model.params,
            cfg.model.random_state,
        )
        run_tags = context.run.tags
        reason = run_tags.get(REASON_TAG, "manual")
        mlflow.tracker.log_params(
            {
                "estimator": cfg.model.estimator,
                "strategy": "full",
                "test_days": cfg.model.test_days,
                **{f"model.{k}": v for k, v in cfg.model.params.items()},
            }
        )
        mlflow.tracker.log_metrics(
            {
                "test_auc": fit.test_auc,
                "test_log_loss": fit.test_log_loss,
                "training_time_s": fit.training_seconds,
                "train_rows": fit.train_rows,
                "test_rows": fit.test_rows,
            }
        )
        mlflow.tracker.set_tags(
            {
                "retrain.reason": reason,
                "retrain.evidence": run_tags.get(EVIDENCE_TAG, ""),
            }
        )
        features = data.features
        logged = registry.log_and_register(
            fit.pipeline,
            registered_name=cfg.model.registered_name,
            input_example=rows.loc[rows[training.SPLIT] == "train", features].head(5),
            tags={
                "dvc_md5": training_dataset["md5"],
                "test_auc": f"{fit.test_auc:.6f}",
                "dagster_run_id": context.run_id,
                "retrain_reason": reason,
            },
        )
        value = {
            "name": logged.name,
            "version": logged.version,
            "run_id": logged.run_id,
            "test_auc": fit.test_auc,
            "dvc_md5": training_dataset["md5"],
        }
        return dg.Output(
            value,
            metadata={
                "model_version": logged.version,
                "test_auc": fit.test_auc,
                "test_log_loss": fit.test_log_loss,
                "training_time_s": fit.training_seconds,
                "dvc_md5": training_dataset["md5"],
                "retrain_reason": reason,
                "mlflow_run": dg.MetadataValue.url(mlflow.run_url(logged.run_id)),
                "mlflow_model": dg.MetadataValue.url(mlflow.model_url(logged.name, logged.version)),
            },
        )

    return [training_dataset, candidate_model]
