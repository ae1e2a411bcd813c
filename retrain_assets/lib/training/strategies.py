"""Retraining strategies: which train rows a retrain uses, with which weights, and how it fits.

After concept drift old rows teach the old relationship, so a retrain may drop them
(``rolling_window``), down-weight them by age (``weighted``) or continue the champion on the
rows labelled since its cut-off (``incremental``). The test split never depends on the strategy,
so every candidate is scored on the same future rows. docs/training.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from retrain_assets.lib.training.fitting import DAY, SPLIT, TARGET

STRATEGIES = ("full", "rolling_window", "weighted", "incremental")
WEIGHT = "_weight"


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")


def _days(values: pd.Series) -> pd.Series:
    """ISO day strings as datetimes (midnight), so differences are whole days."""
    return pd.to_datetime(values.astype(str), format="%Y-%m-%d")


def training_rows(
    rows: pd.DataFrame,
    strategy: str,
    *,
    window_days: int = 30,
    half_life_days: float = 14.0,
    since_day: str | None = None,
) -> pd.DataFrame:
    """The train rows ``strategy`` fits on, with a ``_weight`` column (a copy; index kept).

    ``rows`` is an assembled set (``_day`` ISO date, ``_split``, ``_target``, features). Ages and
    windows count calendar days back from the newest TRAIN day, not from today or the newest test
    day, so the same assembled set always gives the same rows.

    * ``full``: every train row, weight 1.
    * ``rolling_window``: train rows with ``newest - window_days < _day <= newest``, weight 1.
    * ``weighted``: every train row, weight ``0.5 ** (age_days / half_life_days)``, then scaled to
      mean 1 (so regularisation strength and ``min_samples_leaf``-style settings mean the same as
      with unit weights).
    * ``incremental``: train rows with ``_day > since_day`` (the champion's data cut-off; ``None``
      takes every train row), weight 1.

    ValueError for an unknown strategy, a set without train rows, a window or cut-off that leaves
    no rows, or a non-positive half-life.
    """
    _check_strategy(strategy)
    train = rows.loc[rows[SPLIT] == "train"].copy()
    if train.empty:
        raise ValueError(f"the assembled set has no train rows (strategy {strategy!r})")
    days = _days(train[DAY])
    newest = days.max()
    weight = np.ones(len(train), dtype=float)

    if strategy == "rolling_window":
        start = newest - pd.Timedelta(days=window_days)
        keep = ((days > start) & (days <= newest)).to_numpy()
        if not keep.any():
            raise ValueError(
                f"rolling window of {window_days} days ending {newest.date().isoformat()} "
                "leaves no train rows"
            )
        train, weight = train.loc[keep], weight[keep]
    elif strategy == "weighted":
        if not half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
        age_days = (newest - days).dt.days.to_numpy(dtype=float)
        weight = 0.5 ** (age_days / half_life_days)
        weight = weight / weight.mean()
    elif strategy == "incremental" and since_day is not None:
        cutoff = pd.Timestamp(_iso_day(since_day))
        keep = (days > cutoff).to_numpy()
        if not keep.any():
            raise ValueError(f"no new labelled rows since {since_day}")
        train, weight = train.loc[keep], weight[keep]

    train[WEIGHT] = weight
    return train


def _iso_day(day: Any) -> str:
    """A day (ISO string, date or timestamp) as an ISO date string; ValueError if not a day."""
    try:
        return pd.Timestamp(str(day)).date().isoformat()
    except ValueError as exc:
        raise ValueError(f"not an ISO day: {day!r}") from exc


def fit_rows(
    pipeline_factory: Callable[[], Pipeline],
    rows: pd.DataFrame,
    features: list[str],
    strategy: str,
    *,
    base: Pipeline | None = None,
    extra_iter: int = 50,
) -> Pipeline:
    """Fit a pipeline on ``rows`` (the output of ``training_rows``) the way ``strategy`` says.

    * ``full`` / ``rolling_window``: a fresh pipeline from ``pipeline_factory``, plain fit.
    * ``weighted``: a fresh pipeline, ``_weight`` passed as ``sample_weight`` to the final step.
    * ``incremental``: continues ``base`` (the champion's fitted pipeline) on a deep copy; its
      fitted preprocessing is kept (the new rows are transformed with it, never refitted, so the
      continued estimator sees the columns it was trained on), and the final estimator goes on:
      ``partial_fit`` if it has one (SGDClassifier), else warm start (HistGradientBoosting adds
      ``extra_iter`` trees; LogisticRegression restarts its solver from the champion's
      coefficients). ``base`` itself is never modified.

    ValueError for an unknown strategy, test rows in ``rows``, ``weighted`` without a ``_weight``
    column, ``incremental`` without ``base``, or an estimator that cannot continue.
    """
    _check_strategy(strategy)
    if SPLIT in rows and (rows[SPLIT] != "train").any():
        raise ValueError("fit_rows takes train rows only (use training_rows); got test rows")
    X = rows[features]
    y = rows[TARGET].to_numpy()

    if strategy in ("full", "rolling_window"):
        return pipeline_factory().fit(X, y)
    if strategy == "weighted":
        if WEIGHT not in rows:
            raise ValueError(f"the weighted strategy needs a {WEIGHT!r} column (training_rows)")
        pipeline = pipeline_factory()
        final_step = pipeline.steps[-1][0]
        return pipeline.fit(X, y, **{f"{final_step}__sample_weight": rows[WEIGHT].to_numpy()})
    return _continue(base, X, y, extra_iter)


def _continue(base: Pipeline | None, X: pd.DataFrame, y: np.ndarray, extra_iter: int) -> Pipeline:
    """Incremental fit: a deep copy of ``base`` whose final estimator has learned from X, y."""
    if base is None:
        raise ValueError("the incremental strategy needs the champion's fitted pipeline (base)")
    pipeline = copy.deepcopy(base)
    estimator: Any = pipeline.steps[-1][1]
    Xt = pipeline[:-1].transform(X) if len(pipeline.steps) > 1 else X
    name = type(estimator).__name__

    if hasattr(estimator, "partial_fit"):
        if hasattr(estimator, "classes_"):
            estimator.partial_fit(Xt, y, classes=estimator.classes_)
        else:  # a regressor
            estimator.partial_fit(Xt, y)
    elif isinstance(estimator, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        if extra_iter < 1:
            raise ValueError(f"extra_iter must be >= 1, got {extra_iter}")
        # Caveat (sklearn): a warm-started fit re-bins the NEW rows, and the existing trees'
        # contributions to them are computed on those bins with the old trees' bin indices, so on
        # strongly shifted features the new trees start from slightly wrong residuals.
        # Predictions stay consistent (trees predict on raw thresholds).
        estimator.set_params(warm_start=True, max_iter=estimator.n_iter_ + extra_iter)
        estimator.fit(Xt, y)
    elif isinstance(estimator, LogisticRegression):
        if estimator.solver == "liblinear":  # liblinear ignores warm_start: it would refit
            raise ValueError("estimator LogisticRegression(solver='liblinear') cannot warm start")
        estimator.set_params(warm_start=True)
        estimator.fit(Xt, y)
    else:
        raise ValueError(f"estimator {name} supports neither partial_fit nor warm_start")
    return pipeline
