"""Fitting and judging a multiclass or regression model (issue 15): the estimator per task, the
test metrics in the task's own metric, multiclass rows with a class the model never saw left
out, and the incremental strategy continuing a regressor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retrain_assets.lib.training import tasks
from retrain_assets.lib.training.fitting import (
    SPLIT,
    TARGET,
    build_pipeline,
    fit_and_evaluate,
    task_scores,
)
from retrain_assets.lib.training.strategies import fit_rows
from tests.unit.test_training import (
    CATEGORICAL,
    FEATURES,
    NUMERICAL,
    build,
    easy_rows,
    labelled_days,
)


def _as_task(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """The easy problem's rows with a multiclass or numeric target derived from its features."""
    rows = rows.copy()
    amount = rows["amount"].fillna(0.0).to_numpy()
    if task == "regression":
        north = (rows["city"] == "north").to_numpy()
        noise = np.random.default_rng(3).normal(scale=0.3, size=len(rows))
        rows[TARGET] = 10.0 + 3.0 * amount + 2.0 * north + noise
    else:
        rows[TARGET] = np.where(amount < -0.5, "low", np.where(amount < 0.5, "mid", "high"))
    return rows


@pytest.fixture(scope="module")
def easy_set() -> pd.DataFrame:
    return build(easy_rows(400, seed=0), labelled_days(8, rows_per_day=40), test_days=3)


@pytest.mark.parametrize(
    ("task", "estimator"),
    [
        ("multiclass", "hist_gradient_boosting"),
        ("multiclass", "logistic_regression"),
        ("multiclass", "sgd_classifier"),
        ("regression", "hist_gradient_boosting"),
        ("regression", "ridge"),
        ("regression", "sgd_regressor"),
    ],
)
def test_each_task_estimator_learns_and_is_judged_in_its_metric(easy_set, task, estimator):
    rows = _as_task(easy_set, task)
    result = fit_and_evaluate(rows, NUMERICAL, CATEGORICAL, estimator, task=task)
    primary, secondary = tasks.task_metrics(task)
    assert result.task == task and result.metric == primary.name
    assert set(result.metrics) == {primary.name, secondary.name}
    assert result.test_metric == result.metrics[primary.name]
    if task == "multiclass":
        assert result.test_metric > 0.85 and result.calibration is None
    else:
        spread = float(rows.loc[rows[SPLIT] == "test", TARGET].std())
        assert 0 < result.test_metric < 0.5 * spread  # far better than predicting the mean
        assert math.isnan(result.test_auc)


def test_binary_metrics_are_the_auc_and_log_loss_of_today(easy_set):
    result = fit_and_evaluate(easy_set, NUMERICAL, CATEGORICAL, "logistic_regression")
    assert result.metrics == {"roc_auc": result.test_auc, "log_loss": result.test_log_loss}
    assert result.metric == "roc_auc" and result.test_metric == result.test_auc


def test_rows_of_a_class_the_model_never_saw_are_left_out_of_its_metrics(easy_set):
    rows = _as_task(easy_set, "multiclass")
    train = rows[rows[SPLIT] == "train"]
    model = build_pipeline(NUMERICAL, CATEGORICAL, "logistic_regression", task="multiclass")
    model.fit(train[FEATURES], train[TARGET])
    test = rows[rows[SPLIT] == "test"]
    y = test[TARGET].to_numpy().copy()
    metrics, _ = task_scores("multiclass", model, test[FEATURES], y)
    y[:5] = "brand_new_class"
    with_unseen, _ = task_scores("multiclass", model, test[FEATURES], y)
    kept = np.ones(len(y), dtype=bool)
    kept[:5] = False
    proba = model.predict_proba(test[FEATURES])
    expected = tasks.evaluate(
        "multiclass", y[kept], proba[kept], tasks.model_classes("multiclass", model)
    )
    assert with_unseen == pytest.approx(expected)
    assert with_unseen != pytest.approx(metrics)


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "sgd_regressor"])
def test_the_incremental_strategy_continues_a_regressor(easy_set, estimator):
    rows = _as_task(easy_set, "regression")
    train = rows[rows[SPLIT] == "train"]
    old, new = train.iloc[: len(train) // 2], train.iloc[len(train) // 2 :]

    def factory():
        return build_pipeline(NUMERICAL, CATEGORICAL, estimator, task="regression")

    base = fit_rows(factory, old, FEATURES, "full")
    before = base.predict(new[FEATURES]).copy()
    continued = fit_rows(factory, new, FEATURES, "incremental", base=base)
    assert not np.allclose(continued.predict(new[FEATURES]), before)
    assert np.allclose(base.predict(new[FEATURES]), before)  # the champion is not modified


def test_a_ridge_cannot_continue_and_says_so(easy_set):
    rows = _as_task(easy_set, "regression")
    train = rows[rows[SPLIT] == "train"]

    def factory():
        return build_pipeline(NUMERICAL, CATEGORICAL, "ridge", task="regression")

    base = fit_rows(factory, train, FEATURES, "full")
    with pytest.raises(ValueError, match="Ridge supports neither partial_fit nor warm_start"):
        fit_rows(factory, train, FEATURES, "incremental", base=base)
