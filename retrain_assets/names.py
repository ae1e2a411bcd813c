"""Every name the loop shares: asset keys, checks, groups, jobs, sensors, schedules, registry
aliases and run tags. Code refers to these constants, never to the bare strings.

Plain strings (no Dagster import): the backtest, the CLI and the tests read them too.
"""

# Assets, in the order of the flow.
REFERENCE_DATASET = "reference_dataset"
FEATURE_BATCH = "feature_batch"
LABEL_BATCH = "label_batch"
REFERENCE_PROFILE = "reference_profile"
DRIFT_REPORT = "drift_report"
PREDICTIONS = "predictions"
ESTIMATED_PERFORMANCE = "estimated_performance"
PERFORMANCE_REPORT = "performance_report"
TRAINING_DATASET = "training_dataset"
CANDIDATE_MODEL = "candidate_model"
CANARY_EVALUATION = "canary_evaluation"
PROMOTED_MODEL = "promoted_model"
MODEL_HISTORY = "model_history"

# Asset groups: the domains of the flow.
INGEST_GROUP = "ingest"
MONITORING_GROUP = "monitoring"
TRAINING_GROUP = "training"
RELEASE_GROUP = "release"

FLEET_STATUS = "fleet_status"
"""In a fleet: one row per model (champion, live and estimated metric, drift, retraining, canary,
what needs attention)."""
FLEET_GROUP = "fleet"
FLEET_STATUS_JOB = "fleet_status_job"
FLEET_STATUS_SCHEDULE = "fleet_status_schedule"
FLEET_STATUS_SENSOR = "fleet_status_sensor"
CONFIG_ERROR = "config_error"
"""In a fleet: `<model>/config_error`, the UI's record of a model whose file did not load."""
CONFIG_ERRORS_GROUP = "fleet_config_errors"

# Asset checks: <asset>_<property>.
REFERENCE_DATASET_SCHEMA = "reference_dataset_schema"
FEATURE_BATCH_SCHEMA = "feature_batch_schema"
LABEL_BATCH_SCHEMA = "label_batch_schema"
DRIFT_CHECK = "drift_report_within_threshold"
PERFORMANCE_CHECK = "performance_report_not_degraded"
ESTIMATION_CHECK = "estimated_performance_not_degraded"
CALIBRATION_CHECK = "candidate_model_calibration"
DATA_GATE = "training_dataset_data_gate"
AUC_GATE = "candidate_model_auc_vs_champion"
METRIC_GATE = "candidate_model_metric_vs_champion"
"""The relative gate of a multiclass or regression model (binary models keep AUC_GATE)."""
LATENCY_GATE = "candidate_model_p95_latency"
CANARY_CHECK = "canary_evaluation_non_inferior"


def model_gate_check(task: str) -> str:
    """The check name of the relative metric gate for a model task."""
    return AUC_GATE if task == "binary" else METRIC_GATE


# Jobs.
INGEST_JOB = "ingest_job"
REFERENCE_JOB = "reference_job"
RETRAIN_JOB = "retrain_job"
CANARY_JOB = "canary_job"
ROLLBACK_JOB = "rollback_job"

# Sensors and the schedule.
LANDING_SENSOR = "landing_sensor"
BOOTSTRAP_SENSOR = "bootstrap_sensor"
DRIFT_SENSOR = "drift_sensor"
PERFORMANCE_SENSOR = "performance_sensor"
CANARY_SENSOR = "canary_sensor"
GUARDRAIL_SENSOR = "guardrail_sensor"
WEEKLY_SCHEDULE = "weekly_retrain_schedule"
ALERTS_SENSOR = "alerts_sensor"
"""With alerts.webhook_url_env set: posts retraining, gate, promotion, rollback and run-failure
alerts to the webhook."""
SENSORS = (
    LANDING_SENSOR,
    BOOTSTRAP_SENSOR,
    DRIFT_SENSOR,
    PERFORMANCE_SENSOR,
    CANARY_SENSOR,
    GUARDRAIL_SENSOR,
)

# MLflow registry aliases.
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
"""The champion a promotion replaced, shadow-scored while the guardrail watches the new one."""

# Run tags.
REASON_TAG = "retrain/reason"
"""Why a retraining run started (bootstrap, drift, performance, concept, estimated_performance,
schedule, manual, canary, rollback); the run queue lets one run with this tag execute at a
time."""
ESTIMATED_REASON = ESTIMATED_PERFORMANCE
"""The reason of a retraining started on a drop of the performance estimated before labels."""
SOFT_REASONS = ("drift", "performance", "concept", ESTIMATED_REASON)
"""Reasons that answer a detected change (the schedule, bootstrap and manual runs do not)."""
EVIDENCE_TAG = "retrain/evidence"
"""The figures behind the reason, as text a person can read on the run page."""
DATA_DAY_TAG = "retrain/data_day"
"""The data day (partition key) a retraining was decided on; cooldowns count from it."""
REGIME_START_TAG = "retrain/regime_start"
"""A drift retraining: the first drifted day of the streak, where the new regime began."""
GATES_TAG = "retrain/gates"
"""Set to `failed` on a retraining run whose data or model gate failed: a decision, not an
error, so it counts for cooldowns and the schedule like a retraining that passed (a run that
failed any other way does not, and is retried)."""
MODEL_TAG = "retrain/model"
"""In a fleet (RETRAIN_CONFIG is a folder of model files): the model a run belongs to, on every
run."""
CYCLE_TAG = "retrain/cycle"
"""In a fleet: the model whose champion a run may change (retraining, canary and rollback runs);
the run queue lets one run per value execute at a time."""
LANDING_FILE_TAG = "landing/file"
LANDING_SHA_TAG = "landing/sha256"
LANDING_KIND_TAG = "landing/kind"
"""reference, features or labels: which landing file an ingest run stores."""
RUN_KEY_TAG = "dagster/run_key"
PARTITION_TAG = "dagster/partition"
SENSOR_NAME_TAG = "dagster/sensor_name"
SCHEDULE_NAME_TAG = "dagster/schedule_name"

# Model-version tags in the MLflow registry.
TASK_TAG = "model_task"
"""binary, multiclass or regression (absent on versions registered before tasks: binary)."""
METRIC_TAG = "primary_metric"
"""The name of the task's primary metric (roc_auc, macro_roc_auc, rmse)."""
TEST_METRIC_TAG = "test_primary_metric"
"""The version's primary metric on its own test rows (binary versions also keep test_auc)."""
CLASSES_TAG = "model_classes"
"""A multiclass version's classes, JSON, in the order of its probability columns."""
CALIBRATION_URI = "calibration_uri"
"""Where the version's calibrator (JSON) is: an artifact of the run that logged the version."""
CALIBRATION_SHA = "calibration_sha256"
"""sha256 of that calibrator file, recorded at registration; a calibrator that differs is
refused."""
CALIBRATION_METHOD = "calibration_method"
REFERENCE_SINCE = "reference_since"
"""The day the regime the version was trained for began (set by a drift retraining, inherited
by later ones): its drift reference is the production batches since that day."""
