"""The estimators a config may name, per model task, imported only when used (sklearn is slow to
import, and every Dagster process loads the code location)."""

from __future__ import annotations

import importlib
from typing import Any

ESTIMATORS = {
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingClassifier",
    "logistic_regression": "sklearn.linear_model:LogisticRegression",
    "sgd_classifier": "sklearn.linear_model:SGDClassifier",
}
"""The classifiers (binary and multiclass models)."""
REGRESSORS = {
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingRegressor",
    "ridge": "sklearn.linear_model:Ridge",
    "sgd_regressor": "sklearn.linear_model:SGDRegressor",
}
"""The regressors (regression models): the same boosting, a linear baseline and SGD."""
ESTIMATOR_NAMES = ("hist_gradient_boosting", "logistic_regression", "sgd_classifier", "ridge",
                   "sgd_regressor")  # fmt: skip


def task_estimators(task: str) -> dict[str, str]:
    """The estimators a model of ``task`` may use, by config name."""
    return REGRESSORS if task == "regression" else ESTIMATORS


def estimator_class(name: str, task: str = "binary") -> Any:
    """The estimator class for a config name and task; ValueError naming the choices otherwise."""
    choices = task_estimators(task)
    if name not in choices:
        raise ValueError(
            f"estimator {name!r} does not fit model.task {task}; choose one of {sorted(choices)}"
        )
    module, cls = choices[name].split(":")
    return getattr(importlib.import_module(module), cls)


def unknown_params(name: str, params: dict[str, Any], task: str = "binary") -> tuple[list, list]:
    """(names in params the estimator does not take, the names it takes)."""
    known = sorted(estimator_class(name, task)().get_params())
    return sorted(set(params) - set(known)), known
