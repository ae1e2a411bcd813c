"""Training: the versioned training set and the candidate model of one retraining cycle, each
behind blocking gates.

Both steps run in retrain_job, which is one MLflow run (dagster-mlflow). Both talk to MLflow: an
unreachable tracking server is retried with exponential back-off (`mlflow.retries`,
`mlflow.retry_delay_seconds`), then fails the step naming the tracking URI; any other error fails
at once. A gate that fails stops the run: no `challenger` alias, the champion untouched.
"""

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.records import tag_failed_gates
from retrain_assets.resources.mlflow import retry_policy
from retrain_assets.run_config import TrainingRunConfig
from retrain_assets.scope import DVC, MLFLOW, REGISTRY, STORE, Scope
from retrain_assets.training.calibration import calibration_spec
from retrain_assets.training.candidate import train_candidate
from retrain_assets.training.dataset import build_training_set


def data_gate_spec(cfg: RetrainConfig) -> dg.AssetCheckSpec:
    gates = cfg.gates
    return dg.AssetCheckSpec(
        names.DATA_GATE,
        asset=Scope.of(cfg).key(names.TRAINING_DATASET),
        blocking=True,
        description=f"At least {gates.min_rows} training rows; each class at least "
        f"{gates.min_class_share:.0%}; no duplicate ids; null rate <= "
        f"{gates.max_null_rate:.0%} per feature; no constant feature; a non-empty test "
        "set strictly after the training rows (no leakage).",
    )


def metric_gate_text(cfg: RetrainConfig) -> str:
    """What the relative gate demands, in the task's metric."""
    ratio, floor = cfg.gate_ratio, cfg.gate_floor
    if cfg.task == "binary":
        return (
            f"Candidate AUC >= {ratio} x the champion's AUC on the same held-out test set, "
            f"and >= {floor}."
        )
    if cfg.task == "multiclass":
        return (
            f"Candidate macro one-vs-rest AUC >= {ratio} x the champion's on the same held-out "
            f"test set, and >= {floor}."
        )
    bound = "" if floor == float("inf") else f", and <= {floor:g}"
    return f"Candidate RMSE <= the champion's / {ratio} on the same held-out test set{bound}."


def model_gate_specs(cfg: RetrainConfig) -> list[dg.AssetCheckSpec]:
    gates = cfg.gates
    return [
        dg.AssetCheckSpec(
            names.model_gate_check(cfg.task),
            asset=Scope.of(cfg).key(names.CANDIDATE_MODEL),
            blocking=True,
            description=metric_gate_text(cfg),
        ),
        dg.AssetCheckSpec(
            names.LATENCY_GATE,
            asset=Scope.of(cfg).key(names.CANDIDATE_MODEL),
            blocking=True,
            description=f"p95 of {gates.latency_samples} single-row predictions through the "
            f"MLflow pyfunc model <= {gates.max_p95_latency_ms:g} ms.",
        ),
    ]


def build_training_assets(cfg: RetrainConfig) -> list[dg.AssetsDefinition]:
    retries = retry_policy(cfg.mlflow.retries, cfg.mlflow.retry_delay_seconds)
    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(names.TRAINING_DATASET),
        group_name=scope.group(names.TRAINING_GROUP),
        kinds={"parquet", "dvc"},
        retry_policy=retries,
        deps=scope.keys(names.REFERENCE_DATASET, names.FEATURE_BATCH, names.LABEL_BATCH),
        check_specs=[data_gate_spec(cfg)],
        required_resource_keys=scope.resource_keys(STORE, DVC, MLFLOW, REGISTRY),
    )
    def training_dataset(context: dg.AssetExecutionContext, config: TrainingRunConfig):
        """The rows this cycle learns from (reference + labelled production rows, chosen by the
        training strategy) and its time-ordered test set, versioned with DVC.

        Rebuilt at the start of every retraining run."""
        res = scope.resources(context)
        built = build_training_set(cfg, config, res.store, res.dvc, res.mlflow, res.registry)
        yield from tag_failed_gates(context, built)

    @dg.asset(
        key=scope.key(names.CANDIDATE_MODEL),
        group_name=scope.group(names.TRAINING_GROUP),
        kinds={"sklearn", "mlflow"},
        retry_policy=retries,
        ins={names.TRAINING_DATASET: dg.AssetIn(key=scope.key(names.TRAINING_DATASET))},
        required_resource_keys=scope.resource_keys(MLFLOW, REGISTRY),
        check_specs=[
            *model_gate_specs(cfg),
            *([calibration_spec(cfg)] if cfg.task == "binary" else []),
        ],
    )
    def candidate_model(context: dg.AssetExecutionContext, training_dataset: dict):
        """A model fitted on the training set, scored against the champion on the same test
        rows, logged to MLflow (skops) and registered; the `challenger` alias goes to it only when
        both gates pass. Refreshed by every retraining run."""
        res = scope.resources(context)
        trained = train_candidate(cfg, context, training_dataset, res.mlflow, res.registry)
        yield from tag_failed_gates(context, trained)

    return [training_dataset, candidate_model]
