"""Training sets and models: plain functions, no Dagster.

A training set is the reference set plus every labelled production row, each row carrying the data
day it was observed on. The split is by time: the newest labelled data days form the test set and
never train, so the test AUC is what the model would have scored on the days after its cut-off.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from retrain_assets.lib.training.estimators import estimator_class

DAY = "_day"
SPLIT = "_split"
TARGET = "_target"
ORDER = "_order"  # position in time order: the data gate checks test rows come strictly after


def join_labels(features: pd.DataFrame, labels: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """Production rows that have a label (inner join on the id)."""
    return features.merge(labels, on=id_column, how="inner", validate="one_to_one")


def assemble(
    reference: pd.DataFrame,
    labelled: pd.DataFrame,
    *,
    target_column: str,
    timestamp_column: str | None,
    start_date: dt.date,
    test_days: int,
    reference_test_share: float,
) -> pd.DataFrame:
    """Reference + labelled production rows, with a data day and a time-ordered train/test split.

    ``labelled`` carries its observation day in ``_day``. With more than ``test_days`` labelled
    days, the newest ``test_days`` of them are the test set; before that, the newest
    ``reference_test_share`` of all rows in time order is.
    """
    ref = reference.copy()
    if timestamp_column and timestamp_column in ref:
        ref[DAY] = pd.to_datetime(ref[timestamp_column]).dt.date.astype(str)
        ref = ref.sort_values(timestamp_column, kind="stable")
    else:
        ref[DAY] = (start_date - dt.timedelta(days=1)).isoformat()
    rows = pd.concat([ref, labelled], ignore_index=True) if len(labelled) else ref
    rows = rows.rename(columns={target_column: TARGET}).reset_index(drop=True)
    rows = rows.sort_values(DAY, kind="stable").reset_index(drop=True)
    batch_days = sorted(pd.unique(labelled[DAY])) if len(labelled) else []
    if len(batch_days) > test_days:
        cutoff = batch_days[-test_days]
        is_test = rows[DAY] >= cutoff
    else:
        n_test = max(1, round(len(rows) * reference_test_share))
        is_test = pd.Series(np.arange(len(rows)) >= len(rows) - n_test)
    rows[SPLIT] = np.where(is_test, "test", "train")
    rows[ORDER] = np.arange(len(rows))
    return rows


def build_pipeline(
    numerical: list[str],
    categorical: list[str],
    estimator: str = "hist_gradient_boosting",
    params: dict[str, Any] | None = None,
    random_state: int = 0,
    task: str = "binary",
) -> Pipeline:
    """Preprocessing + estimator (of ``task``: a classifier, or a regressor for regression),
    taking a DataFrame of the feature columns."""
    cls = estimator_class(estimator, task)
    params = {"random_state": random_state, **(params or {})}
    if estimator == "sgd_classifier":
        params.setdefault("loss", "log_loss")
    if estimator == "logistic_regression":
        params.setdefault("max_iter", 1000)
    model = cls(**params)
    if estimator == "hist_gradient_boosting":
        numeric_steps: Any = "passthrough"  # HistGradientBoosting handles missing values itself
    else:
        numeric_steps = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical_steps = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="__missing__"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    pre = ColumnTransformer(
        [("num", numeric_steps, numerical), ("cat", categorical_steps, categorical)],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return Pipeline([("preprocess", pre), ("model", model)])


@dataclass(frozen=True)
class FitResult:
    """A fitted pipeline and how it did on the held-out test rows."""

    pipeline: Pipeline
    test_auc: float
    test_log_loss: float
    train_rows: int
    test_rows: int
    training_seconds: float
    window: tuple[str, str]
    calibration: Any = None
    """lib.training.calibration.CalibrationResult when a calibrator was asked for (binary)."""
    task: str = "binary"
    metrics: dict[str, float] | None = None
    """The task's primary and secondary metric on the test rows (lib.training.tasks.evaluate);
    binary: roc_auc and log_loss (= test_auc and test_log_loss)."""

    @property
    def metric(self) -> str:
        """The name of the task's primary metric (roc_auc, macro_roc_auc, rmse)."""
        from retrain_assets.lib.training.tasks import task_metrics

        return task_metrics(self.task)[0].name

    @property
    def test_metric(self) -> float:
        """The primary metric on the test rows: what the relative gate compares."""
        return self.test_auc if self.metrics is None else self.metrics[self.metric]


def score(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """P(positive) for each row."""
    return pipeline.predict_proba(frame)[:, 1]


def task_scores(
    task: str, pipeline: Pipeline, frame: pd.DataFrame, y: np.ndarray
) -> tuple[dict[str, float], np.ndarray]:
    """The task's metrics of ``pipeline`` on ``frame`` against ``y``, and its predictions.

    Multiclass rows whose label the model never saw cannot be scored (no probability column):
    they are left out of the metrics."""
    from retrain_assets.lib.training import tasks

    prediction = tasks.predict(task, pipeline, frame)
    classes = tasks.model_classes(task, pipeline)
    known = tasks.known_label_rows(task, y, classes)
    labels = np.asarray(y)[known].astype(str) if task == "multiclass" else np.asarray(y)[known]
    metrics = tasks.evaluate(task, labels, prediction[known], classes)
    return metrics, prediction


def evaluate(y_true: np.ndarray, y_score: np.ndarray) -> tuple[float, float]:
    """ROC AUC and log loss; AUC is NaN when only one class is present."""
    if len(np.unique(y_true)) < 2:
        return float("nan"), float("nan")
    clipped = np.clip(y_score, 1e-7, 1 - 1e-7)
    return float(roc_auc_score(y_true, y_score)), float(log_loss(y_true, clipped, labels=[0, 1]))


def _thread_limit(n_threads: int | None) -> Any:
    if n_threads:
        return threadpool_limits(limits=n_threads, user_api="openmp")
    return contextlib.nullcontext()


def _task_result(
    task: str,
    pipeline: Pipeline,
    split: tuple[pd.DataFrame, pd.DataFrame],
    features: list[str],
    seconds: float,
) -> FitResult:
    """A multiclass or regression model's FitResult: its task metrics on the test rows."""
    train, test = split
    metrics, _ = task_scores(task, pipeline, test[features], test[TARGET].to_numpy())
    window = (str(train[DAY].min()), str(train[DAY].max()))
    auc = metrics.get("macro_roc_auc", float("nan"))
    loss = metrics.get("log_loss", float("nan"))
    return FitResult(
        pipeline, auc, loss, len(train), len(test), seconds, window, None, task, metrics
    )


def fit_and_evaluate(
    rows: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    estimator: str = "hist_gradient_boosting",
    params: dict[str, Any] | None = None,
    random_state: int = 0,
    *,
    strategy: str = "full",
    base: Pipeline | None = None,
    extra_iter: int = 50,
    n_threads: int | None = None,
    calibration: Any = None,
    task: str = "binary",
) -> FitResult:
    """Fit the train split of a training set the strategy's way and score its test split.

    ``rows`` holds the rows the strategy selected (a ``_weight`` column is used when present);
    ``base`` is the champion's pipeline, which the incremental strategy continues. ``n_threads``
    caps the OpenMP threads of the fit and the scoring (None: the library's default, one per
    core); HistGradientBoosting's threads stall when a neighbour wants a core
    (benchmarks/RESULTS.md, *Retraining cycle*). ``calibration`` (CalibrationSettings) adds a
    calibrator fitted on the train split's newest rows (lib.training.calibration); its fit is
    not counted in ``training_seconds``; it is binary-only (a multiclass or regression model
    is judged in its own metrics: ``FitResult.metrics``)."""
    from retrain_assets.lib.training import calibration as calib
    from retrain_assets.lib.training.strategies import fit_rows

    features = [*numerical, *categorical]
    train = rows[rows[SPLIT] == "train"]
    test = rows[rows[SPLIT] == "test"]
    if train.empty or test.empty:
        raise ValueError(f"need train and test rows, got {len(train)} train / {len(test)} test")

    def factory() -> Pipeline:
        return build_pipeline(numerical, categorical, estimator, params, random_state, task)

    def fit(part: pd.DataFrame) -> Pipeline:
        return fit_rows(factory, part, features, strategy, base=base, extra_iter=extra_iter)

    calibrated = None
    with _thread_limit(n_threads):
        started = time.perf_counter()
        pipeline = fit(train)
        seconds = time.perf_counter() - started
        if task != "binary":
            return _task_result(task, pipeline, (train, test), features, seconds)
        test_scores = score(pipeline, test[features])
        auc, loss = evaluate(test[TARGET].to_numpy(), test_scores)
        if calibration is not None:
            fitted = calib.calibrate(
                fit, lambda model, part: score(model, part[features]), train, calibration
            )
            calibrated = calib.calibration_result(fitted, test[TARGET].to_numpy(), test_scores)
    window = (str(train[DAY].min()), str(train[DAY].max()))
    metrics = {"roc_auc": auc, "log_loss": loss}
    return FitResult(
        pipeline, auc, loss, len(train), len(test), seconds, window, calibrated, task, metrics
    )
