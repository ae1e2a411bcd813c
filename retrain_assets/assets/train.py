"""Training: the versioned training set and the candidate model of one retraining cycle, each
behind blocking gates.

Both steps run in the retraining job, which is one MLflow run (dagster-mlflow): the training set's
DVC md5, strategy and window are logged there, then the candidate's parameters, metrics, gate
results and model. A gate that fails stops the run here: the candidate gets no `challenger` alias
and the champion is untouched.

Both talk to MLflow: an unreachable tracking server is retried with exponential back-off
(`mlflow.retries`, `mlflow.retry_delay_seconds`), then fails the step with an error naming the
tracking URI; any other error fails at once. A candidate is registered only after its artifacts
were written, with their sha256, so a failed upload or a killed run leaves no half-logged version.
"""

from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.resources.dvc import DvcRepository
from retrain_assets.resources.mlflow import MlflowTracking, mlflow_errors, retry_policy
from retrain_assets.resources.registry import ModelRegistry
from retrain_assets.resources.storage import LandingStore, write_parquet_atomic
from retrain_assets.tags import EVIDENCE_TAG, REASON_TAG

if TYPE_CHECKING:  # pandas is imported inside the steps: the code location loads without it
    import pandas as pd

# lib.* modules import sklearn/mlflow (seconds): they are imported inside the asset functions, so
# loading the code location in every Dagster process stays fast.
DATA_GATE = "training_dataset_data_gate"
AUC_GATE = "candidate_model_auc_vs_champion"
LATENCY_GATE = "candidate_model_p95_latency"
CHAMPION, CHALLENGER = "champion", "challenger"


class TrainingRunConfig(dg.Config):
    """Per-run overrides of the config's `training:` section (empty = the config's values)."""

    strategy: str | None = None
    window_days: int | None = None
    half_life_days: float | None = None


def labelled_rows(cfg: RetrainConfig, store: LandingStore) -> "pd.DataFrame":
    """Every stored production row that has a stored label, with the day it was observed."""
    import pandas as pd

    from retrain_assets.lib.training import fitting as training

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


def _gate_table(results: list) -> str:
    lines = ["| rule | passed | figure | threshold | detail |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.rule} | {'yes' if r.passed else '**no**'} | {r.figure} | {r.threshold} "
        f"| {r.detail} |"
        for r in results
    ]
    return "\n".join(lines)


def build_train_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    data, gates = cfg.data, cfg.gates
    retries = retry_policy(cfg.mlflow.retries, cfg.mlflow.retry_delay_seconds)

    @dg.asset(
        group_name="training",
        kinds={"parquet", "dvc"},
        retry_policy=retries,
        deps=["reference_dataset", "feature_batch", "label_batch"],
        check_specs=[
            dg.AssetCheckSpec(
                DATA_GATE,
                asset="training_dataset",
                blocking=True,
                description=f"At least {gates.min_rows} training rows; each class at least "
                f"{gates.min_class_share:.0%}; no duplicate ids; null rate <= "
                f"{gates.max_null_rate:.0%} per feature; no constant feature; a non-empty test "
                "set strictly after the training rows (no leakage).",
            )
        ],
    )
    def training_dataset(
        context: dg.AssetExecutionContext,
        config: TrainingRunConfig,
        store: LandingStore,
        dvc: DvcRepository,
        mlflow: MlflowTracking,
        registry: ModelRegistry,
    ):
        """The rows this cycle learns from (reference + labelled production rows, chosen by the
        training strategy) and its time-ordered test set, versioned with DVC.

        Rebuilt at the start of every retraining run."""
        import pandas as pd

        from retrain_assets.lib.training import data_gate as datagate
        from retrain_assets.lib.training import strategies
        from retrain_assets.lib.training import fitting as training

        with mlflow_errors(cfg.tracking_uri):
            strategy = config.strategy or cfg.training.strategy
            window = config.window_days or cfg.training.window_days
            half_life = config.half_life_days or cfg.training.half_life_days
            rows = training.assemble(
                store.read_reference(),
                labelled_rows(cfg, store),
                target_column=data.target_column,
                timestamp_column=data.timestamp_column,
                start_date=data.start_date,
                test_days=cfg.model.test_days,
                reference_test_share=cfg.model.reference_test_share,
            )
            champion = registry.alias_version(CHAMPION)
            since = registry.version_tags(champion).get("data_until") if champion else None
            train = strategies.training_rows(
                rows,
                strategy,
                window_days=window,
                half_life_days=half_life,
                since_day=since if strategy == "incremental" else None,
            )
            test = rows[rows[training.SPLIT] == "test"].assign(**{strategies.WEIGHT: 1.0})
            chosen = pd.concat([train, test], ignore_index=True)
            path = store.path_for("training", "training_set.parquet")
            write_parquet_atomic(chosen, path)
            md5 = dvc.add(path)
            window_text = f"{train[training.DAY].min()}..{train[training.DAY].max()}"
            mlflow.tracker.log_params(
                {
                    "data.dvc_md5": md5,
                    "data.rows": len(chosen),
                    "data.window": window_text,
                    "strategy": strategy,
                    "strategy.window_days": window if strategy == "rolling_window" else "",
                    "strategy.half_life_days": half_life if strategy == "weighted" else "",
                    "strategy.since_day": since or "" if strategy == "incremental" else "",
                }
            )
            mlflow.tracker.set_tags({"dvc_md5": md5, "data_window": window_text})
            results = datagate.check_training_set(
                chosen,
                id_column=data.id_column,
                features=data.features,
                settings=datagate.GateSettings(
                    min_rows=gates.min_rows,
                    min_class_share=gates.min_class_share,
                    max_null_rate=gates.max_null_rate,
                ),
            )
            value = {
                "path": str(path),
                "md5": md5,
                "rows": len(chosen),
                "window": window_text,
                "strategy": strategy,
                "data_until": str(train[training.DAY].max()),
            }
            yield dg.Output(
                value,
                metadata={
                    "dvc_md5": md5,
                    "strategy": strategy,
                    "training_set_file": dg.MetadataValue.path(str(path)),
                    "dagster/row_count": len(chosen),
                    "train_rows": len(train),
                    "test_rows": len(test),
                    "positive_rate": float(chosen[training.TARGET].mean()),
                    "window": window_text,
                    "mlflow_run": dg.MetadataValue.url(mlflow.run_url(mlflow.run_id)),
                },
            )
            failed = datagate.summary(results)
            yield dg.AssetCheckResult(
                check_name=DATA_GATE,
                passed=not failed,
                description=failed or "every data rule passed",
                metadata={
                    "rules": dg.MetadataValue.md(_gate_table(results)),
                    **{f"{r.rule}": r.figure for r in results},
                    "failed_rules": ", ".join(r.rule for r in results if not r.passed) or "none",
                },
            )

    @dg.asset(
        group_name="training",
        kinds={"sklearn", "mlflow"},
        retry_policy=retries,
        check_specs=[
            dg.AssetCheckSpec(
                AUC_GATE,
                asset="candidate_model",
                blocking=True,
                description=f"Candidate AUC >= {gates.auc_ratio} x the champion's AUC on the "
                f"same held-out test set, and >= {gates.auc_floor}.",
            ),
            dg.AssetCheckSpec(
                LATENCY_GATE,
                asset="candidate_model",
                blocking=True,
                description=f"p95 of {gates.latency_samples} single-row predictions through the "
                f"MLflow pyfunc model <= {gates.max_p95_latency_ms:g} ms.",
            ),
        ],
    )
    def candidate_model(
        context: dg.AssetExecutionContext,
        training_dataset: dict,
        mlflow: MlflowTracking,
        registry: ModelRegistry,
    ):
        """A model fitted on the training set, scored against the champion on the same test
        rows, logged to MLflow (skops) and registered; the `challenger` alias goes to it only when
        both gates pass. Refreshed by every retraining run."""
        import pandas as pd

        from retrain_assets.lib.release import model_gates as gate_lib
        from retrain_assets.lib.release import model_store as model_io
        from retrain_assets.lib.training import fitting as training

        with mlflow_errors(cfg.tracking_uri):
            rows = pd.read_parquet(training_dataset["path"])
            strategy = training_dataset["strategy"]
            champion = registry.alias_version(CHAMPION)
            champion_model = registry.load(champion) if champion else None
            fit = training.fit_and_evaluate(
                rows,
                data.numerical_features,
                data.categorical_features,
                cfg.model.estimator,
                cfg.model.params,
                cfg.model.random_state,
                strategy=strategy,
                base=champion_model if strategy == "incremental" else None,
                extra_iter=cfg.training.incremental_extra_iter,
                n_threads=cfg.model.n_threads,
            )
            test = rows[rows[training.SPLIT] == "test"]
            champion_auc = None
            if champion_model is not None:
                scores = training.score(champion_model, test[data.features])
                champion_auc, _ = training.evaluate(test[training.TARGET].to_numpy(), scores)
            run_tags = context.run.tags
            reason = run_tags.get(REASON_TAG, "manual")
            mlflow.tracker.log_params(
                {
                    "estimator": cfg.model.estimator,
                    "test_days": cfg.model.test_days,
                    **{f"model.{k}": v for k, v in cfg.model.params.items()},
                }
            )
            mlflow.tracker.set_tags(
                {"retrain.reason": reason, "retrain.evidence": run_tags.get(EVIDENCE_TAG, "")}
            )
            logged = model_io.log_and_register(
                fit.pipeline,
                registered_name=cfg.model.registered_name,
                input_example=test[data.features].head(5),
                tags={
                    "dvc_md5": training_dataset["md5"],
                    "test_auc": f"{fit.test_auc:.6f}",
                    "dagster_run_id": context.run_id,
                    "retrain_reason": reason,
                    "strategy": strategy,
                    "data_until": training_dataset["data_until"],
                },
            )
            latencies = gate_lib.pyfunc_latency_ms(
                f"models:/{logged.name}/{logged.version}",
                test[data.features],
                gates.latency_samples,
            )
            results = [
                gate_lib.auc_gate(
                    fit.test_auc, champion_auc, ratio=gates.auc_ratio, floor=gates.auc_floor
                ),
                gate_lib.latency_gate(latencies, max_p95_ms=gates.max_p95_latency_ms),
            ]
            auc_result, latency_result = results
            for result in results:
                registry.tag_version(logged.version, result.registry_tags())
            if champion_auc is not None:
                registry.tag_version(
                    logged.version,
                    {"champion_test_auc": f"{champion_auc:.6f}", "champion_version": str(champion)},
                )
            mlflow.tracker.log_metrics(
                {
                    "test_auc": fit.test_auc,
                    "test_log_loss": fit.test_log_loss,
                    "training_time_s": fit.training_seconds,
                    "train_rows": fit.train_rows,
                    "test_rows": fit.test_rows,
                    "p95_latency_ms": latency_result.value,
                    **({"champion_test_auc": champion_auc} if champion_auc is not None else {}),
                }
            )
            passed = all(r.passed for r in results)
            if passed:
                registry.set_alias(CHALLENGER, logged.version)
            value = {
                "name": logged.name,
                "version": logged.version,
                "run_id": logged.run_id,
                "test_auc": fit.test_auc,
                "champion_version": champion,
                "champion_auc": champion_auc,
                "dvc_md5": training_dataset["md5"],
                "gated": passed,
            }
            yield dg.Output(
                value,
                metadata={
                    "model_version": logged.version,
                    "test_auc": fit.test_auc,
                    "champion_test_auc": champion_auc if champion_auc is not None else float("nan"),
                    "test_log_loss": fit.test_log_loss,
                    "p95_latency_ms": latency_result.value,
                    "training_time_s": fit.training_seconds,
                    "strategy": strategy,
                    "dvc_md5": training_dataset["md5"],
                    "artifact_sha256": logged.artifact_sha256,
                    "retrain_reason": reason,
                    "challenger": passed,
                    "mlflow_run": dg.MetadataValue.url(mlflow.run_url(logged.run_id)),
                    "mlflow_model": dg.MetadataValue.url(
                        mlflow.model_url(logged.name, logged.version)
                    ),
                },
            )
            for name, result in ((AUC_GATE, auc_result), (LATENCY_GATE, latency_result)):
                yield dg.AssetCheckResult(
                    check_name=name,
                    passed=result.passed,
                    description=result.detail,
                    metadata={**result.to_metadata(), "model_version": logged.version},
                )

    return [training_dataset, candidate_model]
