"""The YAML data contract: one file describes the user's data; everything else has a default.

The file's path comes from ``RETRAIN_CONFIG``. Without it the demo fleet, the folder ``demo``
under the current folder (written by ``make dev``), is used. Relative paths resolve against the
folder of the config file. Unknown keys and wrong types are errors that name the key; missing
files are errors that name the path.

``RETRAIN_CONFIG`` may also name a folder of model files, one model each (a fleet): that is
``retrain_assets.fleet``, which reads each file with the steps below (``read_raw_config``, then
``build_config``) and marks each config with its model name (``with_fleet_model``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_VAR = "RETRAIN_CONFIG"
DEMO_CONFIG = Path("demo")
"""The demo fleet (`make dev` simulates it): a folder of model files under the current folder."""


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file and the key or path."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Strict(BaseModel):
    # The docstring under each field is its meaning, which config_doc reads from this file's
    # source for the README's configuration reference. Not `use_attribute_docstrings=True`: on
    # Python < 3.13 pydantic finds each class's source by walking the import's stack frames,
    # ~0.2 s at every import of the code location (every process that loads it).
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """What the user's data looks like and where it lands."""

    landing_dir: Path
    """Folder with reference.*, features/YYYY-MM-DD.* and labels/YYYY-MM-DD.* (CSV or Parquet)."""
    id_column: str = "id"
    """Unique row id; labels are joined to predictions by it."""
    timestamp_column: str | None = None
    """Optional event time of a row; orders the reference set when present."""
    target_column: str
    """The label column (in reference.* and labels/*)."""
    positive_label: int | str | bool = 1
    """The target value that counts as the positive class."""
    numerical_features: list[str] = Field(default_factory=list)
    """Numerical model inputs."""
    categorical_features: list[str] = Field(default_factory=list)
    """Categorical model inputs (strings)."""
    start_date: dt.date
    """First daily partition."""

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> DataConfig:
        features = [*self.numerical_features, *self.categorical_features]
        if not features:
            raise ValueError("numerical_features and categorical_features are both empty")
        special = [self.id_column, self.target_column, self.timestamp_column]
        clash = sorted({c for c in features if c in special or features.count(c) > 1})
        if clash:
            raise ValueError(f"feature columns listed twice or clashing with id/target: {clash}")
        return self

    @property
    def features(self) -> list[str]:
        return [*self.numerical_features, *self.categorical_features]


class IngestConfig(_Strict):
    """Landing checks and the landing sensor."""

    max_null_rate: float = Field(0.2, ge=0.0, le=1.0)
    """A feature column with a larger share of missing values fails the batch's schema check."""
    sensor_interval_seconds: int = Field(30, ge=1)
    """How often landing_sensor looks for new or changed files."""


class ModelConfig(_Strict):
    """The model being retrained."""

    registered_name: str
    """Name in the MLflow model registry."""
    task: Literal["binary", "multiclass", "regression"] = "binary"
    """What the model predicts: binary (a class and P(positive); metric ROC AUC), multiclass (one
    of several classes; macro one-vs-rest ROC AUC, log loss) or regression (a number; RMSE,
    MAE). Every stage (gates, canary, live performance, backtest) judges in the task's metric."""
    estimator: Literal[
        "hist_gradient_boosting", "logistic_regression", "sgd_classifier", "ridge", "sgd_regressor"
    ] = "hist_gradient_boosting"
    """The sklearn estimator behind the preprocessing. binary and multiclass:
    hist_gradient_boosting, logistic_regression, sgd_classifier; regression:
    hist_gradient_boosting (the regressor), ridge, sgd_regressor."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Hyper-parameters passed to the estimator."""
    test_days: int = Field(7, ge=1)
    """Newest labelled data days held out as the time-ordered test set."""
    reference_test_share: float = Field(0.2, gt=0.0, lt=1.0)
    """With no labelled batch yet, the newest share of the reference set is the test set."""
    random_state: int = 0
    """Seed for the estimator and any sampling."""
    n_threads: int | None = Field(None, ge=1)
    """OpenMP threads for the fit (null: one per core). Set 1 on a box shared with other work:
    HistGradientBoosting's threads stall when a core is busy (fit 24 s vs 2.3 s measured)."""

    @model_validator(mode="after")
    def _params_exist(self) -> ModelConfig:
        from retrain_assets.lib.training.estimators import task_estimators, unknown_params

        if self.estimator not in task_estimators(self.task):
            raise ValueError(
                f"estimator {self.estimator} does not fit task {self.task}; a {self.task} model "
                f"takes one of {sorted(task_estimators(self.task))}"
            )
        if not self.params:
            return self  # nothing to check: no need to import sklearn while loading
        unknown, known = unknown_params(self.estimator, self.params, self.task)
        if unknown:
            raise ValueError(
                f"params {unknown} are not parameters of {self.estimator}; it takes {known}"
            )
        return self


class TrainingConfig(_Strict):
    """Which rows a retraining learns from; each run may override these (run config)."""

    strategy: Literal["full", "rolling_window", "weighted", "incremental"] = "full"
    """full: everything; rolling_window: the last window_days; weighted: all, older rows weigh
    less; incremental: continue the champion on the rows labelled since its training."""
    window_days: int = Field(30, ge=1)
    """rolling_window: data days kept."""
    half_life_days: float = Field(14.0, gt=0.0)
    """weighted: a row this many data days older weighs half as much."""
    incremental_extra_iter: int = Field(50, ge=1)
    """incremental with HistGradientBoosting: trees added by warm start."""


class GatesConfig(_Strict):
    """Everything a candidate must pass before it can serve."""

    min_rows: int = Field(500, ge=1)
    """Data gate: training rows at least."""
    min_class_share: float = Field(0.02, ge=0.0, lt=0.5)
    """Data gate: each class at least this share of the training rows."""
    max_null_rate: float = Field(0.2, ge=0.0, le=1.0)
    """Data gate: per feature, over the training rows."""
    auc_ratio: float = Field(0.99, gt=0.0, le=1.5)
    """Candidate AUC >= this x the champion's, both on the same test set ..."""
    auc_floor: float = Field(0.6, ge=0.0, le=1.0)
    """... and >= this (alone when there is no champion)."""
    metric_ratio: float | None = Field(None, gt=0.0, le=1.5)
    """Every task: the candidate's primary metric is no worse than this x the champion's on the
    same test set (for an error metric such as RMSE the ratio applies the other way: candidate
    <= champion / ratio). null: auc_ratio."""
    floor: float | None = None
    """Every task: the absolute bound on the primary metric, a minimum for an AUC and a maximum
    for an error metric (the RMSE a candidate must stay under). null: auc_floor for binary and
    multiclass, no bound for regression."""
    max_p95_latency_ms: float = Field(100.0, gt=0.0)
    """p95 of single-row predictions through the MLflow pyfunc model."""
    latency_samples: int = Field(200, ge=200)
    """Single-row predictions timed for the latency gate."""


class CalibrationConfig(_Strict):
    """The calibrator every candidate gets: it turns the model's scores into probabilities that
    estimated_performance reads (labels are not needed to estimate the AUC of a batch)."""

    method: Literal["sigmoid", "isotonic"] = "sigmoid"
    """sigmoid: Platt scaling of the score's logit (2 parameters, monotone: it never changes a
    ranking); isotonic: a monotone step function (needs more rows, may tie scores)."""
    holdout_share: float = Field(0.2, gt=0.0, lt=0.5)
    """The calibrator is fitted on the newest share of the train rows (time order), scored by a
    model fitted on the older rest; the candidate itself is then fitted on every train row. The
    test rows the gates judge never calibrate."""
    min_rows: int = Field(200, ge=20)
    """Fewer held-out rows (or a single class) leave the candidate uncalibrated (identity),
    which its calibration check reports."""
    max_ece: float = Field(0.05, gt=0.0, le=1.0)
    """The candidate's calibration check warns when the expected calibration error of its
    calibrated probabilities on the test rows exceeds this (10 equal-width bins)."""
    serve: bool = False
    """Write the calibrated probability as the served score in predictions (default: the
    model's own score, unchanged)."""


class EstimationConfig(_Strict):
    """Performance estimated before labels arrive (confidence-based: each row's calibrated
    probability is its chance of being positive), and the estimated-performance trigger."""

    confidence: float = Field(0.9, gt=0.5, lt=1.0)
    """Two-sided confidence of the interval around the estimated AUC."""
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    """Decision threshold on the score for the expected accuracy."""
    min_rows: int = Field(200, ge=2)
    """No estimate (and no verdict) for a batch with fewer rows."""
    relative_drop: float = Field(0.05, ge=0.0, lt=1.0)
    """Estimated degraded when the interval's upper end < the champion's test AUC x
    (1 - relative_drop), or < performance.absolute_floor."""
    consecutive: int = Field(2, ge=1)
    """performance_sensor retrains after this many estimated-degraded batches in a row (it
    shares performance.cooldown_days and performance.retrain)."""
    retrain: bool = True
    """Whether an estimated drop starts a retraining (reason estimated_performance); off, the
    estimate and its check are still reported."""


class CanaryConfig(_Strict):
    """The shadow comparison between a gated challenger and the champion on live labels."""

    mode: Literal["shadow", "none"] = "shadow"
    """shadow: promote only after a non-inferiority test on live labelled rows; none: promote
    right after the gates (faster, but the live data never had a say)."""
    min_rows: int = Field(2000, ge=50)
    """Labelled rows scored by both models before deciding."""
    margin: float = Field(0.01, ge=0.0, lt=0.5)
    """The challenger may be at most this much AUC worse (binary); for multiclass and
    regression, its mean per-row loss at most this share of the champion's above it."""
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    """One-sided confidence of the non-inferiority decision."""
    method: Literal["delong", "paired_bootstrap"] = "delong"
    """Paired test on the same rows."""
    sensor_interval_seconds: int = Field(30, ge=1)
    """How often canary_sensor evaluates."""


class GuardrailConfig(_Strict):
    """After a promotion, the previous champion stays in the shadow for a few labelled batches."""

    enabled: bool = True
    """Roll back automatically when the new champion does worse live."""
    batches: int = Field(5, ge=1)
    """Labelled batches after a promotion during which both champions are compared."""
    margin: float = Field(0.02, ge=0.0, lt=0.5)
    """Roll back when the new champion's live AUC < the previous one's - margin (binary); for
    multiclass and regression the margin is relative (macro AUC < previous x (1 - margin), RMSE
    > previous x (1 + margin)) ..."""
    min_rows: int = Field(300, ge=10)
    """... over at least this many rows both scored."""
    sensor_interval_seconds: int = Field(30, ge=1)
    """How often guardrail_sensor evaluates."""


class DriftConfig(_Strict):
    """The drift engine's thresholds and the drift trigger."""

    psi_threshold: float = Field(0.2, gt=0.0)
    """A column whose PSI exceeds this is drifted ..."""
    psi_significance: bool = True
    """... when sampling noise cannot explain it (Pearson's χ² over the PSI's bins, at `alpha`).
    Small batches need it: with 50 rows and 10 bins, noise alone averages PSI 0.18."""
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    """Significance of KS / chi² after the Benjamini-Hochberg correction across columns."""
    min_ks_effect: float = Field(0.1, ge=0.0, le=1.0)
    """A significant KS test counts only when its statistic is at least this (large samples)."""
    min_cramers_v: float = Field(0.1, ge=0.0, le=1.0)
    """A significant chi² counts only when Cramér's V is at least this."""
    drift_share: float = Field(0.3, gt=0.0, le=1.0)
    """The batch drifts when this share of its columns drifted ..."""
    key_features: list[str] = Field(default_factory=list)
    """... or when any of these columns drifted."""
    exact_max_rows: int = Field(200_000, ge=1)
    """Exact KS up to this many rows per sample; a binned KS with a reported bound above."""
    html_report: bool = True
    """Write Evidently's HTML report next to each drift report."""
    report_max_rows: int = Field(5_000, ge=100)
    """Rows sampled from each side for the Evidently report (it is slow on large frames)."""
    consecutive: int = Field(2, ge=1)
    """drift_sensor retrains after this many drifted batches in a row (debounce)."""
    reference_days: int = Field(28, ge=1)
    """After a drift retraining, drift is judged against the production batches since the
    shift began (the new regime), at most this many of the newest days, not against the
    champion's training set, which still mixes in the rows from before the shift."""
    reference_min_rows: int = Field(500, ge=1)
    """... when those batches hold at least this many rows; else the training set is used."""
    cooldown_days: int = Field(7, ge=0)
    """... and only when the last retraining is at least this many data days old."""
    require_impact: bool = False
    """Drift retrains only when the estimated AUC of its newest batch also fell: the interval's
    upper end below the champion's test AUC. Drift the model's own probabilities say does not
    hurt then costs no retraining (the estimate cannot see concept drift; the label-based
    triggers still can)."""
    retrain: bool = True
    """Whether drift_sensor starts retrainings at all; off, drift is still measured and reported
    (a policy of schedule-only retraining, e.g. in `backtest --compare`)."""
    sensor_interval_seconds: int = Field(30, ge=1)
    """How often drift_sensor evaluates."""


class PerformanceConfig(_Strict):
    """Live performance once labels arrive, and the performance / concept trigger."""

    min_labels: int = Field(200, ge=1)
    """No verdict below this many labelled rows (after pooling)."""
    window_days: int = Field(7, ge=0)
    """Previous label days pooled to reach min_labels."""
    relative_drop: float = Field(0.05, ge=0.0, lt=1.0)
    """Degraded when live AUC < the champion's test AUC x (1 - relative_drop) ..."""
    absolute_floor: float = Field(0.6, ge=0.0, le=1.0)
    """... or when live AUC < this."""
    concept_max_drift_share: float = Field(0.2, ge=0.0, le=1.0)
    """Degradation while the observed days' drift share stays below this is concept drift."""
    degradation_confidence: float = Field(0.99, gt=0.5, lt=1.0)
    """Degraded only when live AUC is below the bar with this one-sided confidence (Hanley-McNeil
    standard error): a day of a few hundred labels moves the AUC by about 0.03."""
    page_hinkley_delta: float = Field(0.075, ge=0.0)
    """Page-Hinkley tolerance per row, in running standard deviations of the per-row log loss."""
    page_hinkley_threshold: float = Field(115.0, gt=0.0)
    """Page-Hinkley alarm threshold (lambda), in the same standard-deviation units."""
    max_label_delay_days: int = Field(30, ge=0)
    """Predictions are searched this many days back for a label's id."""
    cooldown_days: int = Field(3, ge=0)
    """performance_sensor waits this many data days after the last retraining."""
    retrain: bool = True
    """Whether performance_sensor starts retrainings at all; off, degradation and concept drift
    are still measured and reported."""
    sensor_interval_seconds: int = Field(30, ge=1)
    """How often performance_sensor evaluates."""


class ScheduleConfig(_Strict):
    """The hard fallback."""

    enabled: bool = True
    """Start weekly_retrain_schedule running."""
    cron: str = "0 3 * * 1"
    """When the schedule ticks (wall clock); what it decides is in data time."""
    max_days_between_retrains: int = Field(7, ge=1)
    """A tick retrains when the last retraining is at least this many data days old."""


class MlflowConfig(_Strict):
    """Where runs and models are tracked."""

    tracking_uri: str | None = None
    """Default: sqlite:///<workdir>/mlflow.db."""
    experiment_name: str = "retrain_assets"
    """The experiment every retraining cycle logs into."""
    ui_url: str = "http://127.0.0.1:5000"
    """Base URL of the MLflow UI, used for links in asset metadata."""
    retries: int = Field(3, ge=0, le=10)
    """Steps that talk to MLflow retry this often while the tracking server is unreachable ..."""
    retry_delay_seconds: float = Field(2.0, gt=0.0, le=300.0)
    """... waiting this long before the first retry, then exponentially longer (x3, x7, ...)."""


AlertKind = Literal["retraining_started", "gate_failed", "promotion", "rollback", "run_failure"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_SHOWN = "<value not shown>"


class AlertsConfig(_Strict):
    """Messages to a webhook (Slack-compatible JSON: a `text`, plus the event's fields) when a
    soft-triggered retraining starts, a gate fails, a model is promoted or rolled back, or a run
    fails. Off while no webhook variable is named. A delivery that keeps failing is logged and
    dropped; it never fails a pipeline run."""

    webhook_url_env: str | None = None
    """The name of the environment variable that holds the webhook URL (e.g.
    RETRAIN_WEBHOOK_URL), read when an alert is sent. The URL is a secret: it is never written in
    this file, nor logged. null: no alerts."""
    events: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS))
    """The events sent: retraining_started (drift, performance, concept or estimated
    performance; not the schedule, bootstrap or manual runs), gate_failed (data, metric,
    latency or canary gate), promotion, rollback, run_failure (any other failed run)."""
    retries: int = Field(3, ge=0, le=10)
    """A delivery that fails (connection error, timeout, HTTP 429 or 5xx) is retried this
    often ..."""
    retry_delay_seconds: float = Field(1.0, gt=0.0, le=60.0)
    """... waiting this long before the first retry, then twice as long each time; then the
    alert is logged (without the URL) and dropped."""
    timeout_seconds: float = Field(5.0, gt=0.0, le=60.0)
    """Time allowed for one delivery attempt."""
    sensor_interval_seconds: int = Field(30, ge=1)
    """How often alerts_sensor looks for new events."""
    dagster_ui_url: str | None = None
    """Base URL of the Dagster UI (e.g. http://127.0.0.1:3000); alerts then link to their run."""

    @model_validator(mode="before")
    @classmethod
    def _hide_what_is_not_a_variable_name(cls, data: Any) -> Any:
        # A value that is not a variable name may be the URL itself: the error must not echo it
        # (the loader's messages show the value they got).
        value = data.get("webhook_url_env") if isinstance(data, dict) else None
        if isinstance(value, str) and not _ENV_NAME.fullmatch(value):
            return {**data, "webhook_url_env": _NOT_SHOWN}
        return data

    @field_validator("webhook_url_env")
    @classmethod
    def _is_a_variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "must be the name of an environment variable (letters, digits and _) that holds "
                "the webhook URL, not the URL: a webhook URL is a secret, so put it in an "
                "environment variable and write that variable's name here"
            )
        return value

    @field_validator("dagster_ui_url")
    @classmethod
    def _is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class RetrainConfig(_Strict):
    """The whole contract."""

    data: DataConfig
    workdir: Path = Path(".retrain")
    """Dagster-independent state: normalised batches, mlflow.db, mlruns, the DVC repo."""
    model: ModelConfig
    ingest: IngestConfig = IngestConfig()
    training: TrainingConfig = TrainingConfig()
    gates: GatesConfig = GatesConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    estimation: EstimationConfig = EstimationConfig()
    canary: CanaryConfig = CanaryConfig()
    guardrail: GuardrailConfig = GuardrailConfig()
    drift: DriftConfig = DriftConfig()
    performance: PerformanceConfig = PerformanceConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    mlflow: MlflowConfig = MlflowConfig()
    alerts: AlertsConfig = AlertsConfig()
    source: Path | None = None
    """The file this config was read from (set by the loader)."""
    # Not a field: no file sets it and the config reference does not list it. The fleet loader
    # sets it (with_fleet_model); model_copy keeps it.
    _fleet_model: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _keys_fit_the_task(self) -> RetrainConfig:
        task = self.model.task
        if task != "binary" and "positive_label" in self.data.model_fields_set:
            raise ValueError(
                f"data.positive_label is a binary setting; model.task is {task} (remove the key)"
            )
        if task != "binary" and self.drift.require_impact:
            raise ValueError(
                f"drift.require_impact reads the AUC estimated before labels, which covers "
                f"binary models; model.task is {task}"
            )
        floor = self.gates.floor
        if floor is not None and task != "regression" and not 0.0 <= floor <= 1.0:
            raise ValueError(f"gates.floor {floor} is an AUC for task {task}: it must be in [0, 1]")
        if floor is not None and task == "regression" and not floor > 0:
            raise ValueError(f"gates.floor {floor} is the largest RMSE allowed: it must be > 0")
        return self

    @model_validator(mode="after")
    def _key_features_exist(self) -> RetrainConfig:
        unknown = sorted(set(self.drift.key_features) - set(self.data.features))
        if unknown:
            raise ValueError(f"drift.key_features {unknown} are not features of the data")
        return self

    @property
    def task(self) -> str:
        """model.task: binary, multiclass or regression."""
        return self.model.task

    @property
    def gate_ratio(self) -> float:
        """The relative gate's ratio in force: gates.metric_ratio, else gates.auc_ratio."""
        ratio = self.gates.metric_ratio
        return self.gates.auc_ratio if ratio is None else ratio

    @property
    def gate_floor(self) -> float:
        """The absolute bound in force: gates.floor, else auc_floor for the AUC tasks and no
        bound (an infinite ceiling) for regression."""
        if self.gates.floor is not None:
            return self.gates.floor
        return math.inf if self.model.task == "regression" else self.gates.auc_floor

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.workdir / 'mlflow.db'}"

    @property
    def fleet_model(self) -> str | None:
        """The model's name in a fleet folder (its file's stem); None for a single-file config."""
        return self._fleet_model


def with_fleet_model(cfg: RetrainConfig, name: str | None) -> RetrainConfig:
    """A copy of cfg marked as the fleet's model ``name`` (None: a single-model config)."""
    marked = cfg.model_copy()
    marked._fleet_model = name  # a private attribute: settable although the model is frozen
    return marked


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"invalid config {path}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        elif e["type"] == "missing":
            lines.append(f"  {key}: required key is missing")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def config_path() -> Path:
    """The config in force (a file, or a folder of model files): $RETRAIN_CONFIG, else the demo
    fleet's folder under the current folder."""
    return Path(os.environ.get(ENV_VAR) or DEMO_CONFIG).expanduser().resolve()


def _config_file(path: str | Path | None) -> Path:
    """The config file to read: path, else $RETRAIN_CONFIG, else the demo's; it must exist."""
    file = Path(path).expanduser().resolve() if path is not None else config_path()
    if not file.is_file():
        hint = (
            ""
            if path is not None or os.environ.get(ENV_VAR)
            else (
                f" (set {ENV_VAR} to a config file or a folder of model files, or run `make dev` "
                "for the demo fleet)"
            )
        )
        raise ConfigError(f"config file not found: {file}{hint}")
    return file


def read_raw_config(file: Path) -> dict[str, Any]:
    """The file's YAML mapping, unvalidated; ConfigError for bad YAML, a key written twice or a
    document that is not a mapping."""
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {file} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {file} must hold a mapping, got {type(raw).__name__}")
    return raw


def build_config(file: Path, raw: dict[str, Any], *, require_landing: bool = True) -> RetrainConfig:
    """Validate a raw mapping read from file; resolve its relative paths against file's folder."""
    try:
        cfg = RetrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(file, exc)) from None
    base = file.parent
    data = cfg.data.model_copy(update={"landing_dir": (base / cfg.data.landing_dir).resolve()})
    cfg = cfg.model_copy(
        update={"data": data, "workdir": (base / cfg.workdir).resolve(), "source": file}
    )
    if require_landing and not cfg.data.landing_dir.is_dir():
        raise ConfigError(f"{file}: data.landing_dir does not exist: {cfg.data.landing_dir}")
    return cfg


def load_config(path: str | Path | None = None, *, require_landing: bool = True) -> RetrainConfig:
    """Read, validate and resolve a config file; ConfigError names what is wrong."""
    file = _config_file(path)
    return build_config(file, read_raw_config(file), require_landing=require_landing)
