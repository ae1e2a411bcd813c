"""The estimators a config may name, imported only when used (sklearn is slow to import, and every
Dagster process loads the code location)."""

from __future__ import annotations

import importlib
from typing import Any

ESTIMATORS = {
    "hist_gradient_boosting": "sklearn.ensemble:HistGradientBoostingClassifier",
    "logistic_regression": "sklearn.linear_model:LogisticRegression",
    "sgd_classifier": "sklearn.linear_model:SGDClassifier",
}


def estimator_class(name: str) -> Any:
    """The estimator class for a config name; ValueError naming the choices otherwise."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    module, cls = ESTIMATORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def unknown_params(name: str, params: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(names in params the estimator does not take, the names it takes)."""
    known = sorted(estimator_class(name)().get_params())
    return sorted(set(params) - set(known)), known
