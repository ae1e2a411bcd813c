"""Metrics, per-row losses, gates and a paired test for each model task: plain maths.

``binary`` (ROC AUC, log loss), ``multiclass`` (macro one-vs-rest ROC AUC, log loss) and
``regression`` (RMSE, MAE). Each task has a primary metric, the one gates and the champion
comparison use, and a secondary one reported alongside. A metric that is undefined on the rows
at hand (an AUC with a single class present) is NaN, never an exception: the caller decides
what a NaN means (a gate fails on it). Inputs that are wrong (shapes, non-finite predictions,
labels the model does not know) raise ``ValueError`` naming the input.

:func:`relative_gate` holds a candidate's metric against the champion's and an absolute bound,
in the metric's own direction; :func:`paired_non_inferiority` tests, on the per-row losses of
the same rows, that a challenger is not worse than the champion by a margin or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import t as student_t
from sklearn.metrics import roc_auc_score

TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")

PROBA_CLIP = 1e-7
"""Probabilities are clipped to ``[PROBA_CLIP, 1 - PROBA_CLIP]`` before the log: a single
confidently wrong row costs at most ``-log(1e-7)`` ≈ 16.1 instead of infinity."""

REGRESSION_LOSSES: tuple[str, ...] = ("squared", "absolute")

Floats = NDArray[np.float64]


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; task must be one of {TASKS}")


# --------------------------------------------------------------------------------------------
# Input validation


def _labels(y_true: ArrayLike) -> NDArray[np.generic]:
    """``y_true`` as a non-empty 1-D array (booleans as 0/1, so they match classes 0 and 1)."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D; got shape {y.shape}")
    if y.size == 0:
        raise ValueError("y_true is empty; metrics need at least one row")
    return y.astype(np.int64) if y.dtype == np.bool_ else y


def _prediction(task: str, prediction: ArrayLike, n: int) -> Floats:
    """``prediction`` as floats of the task's shape for ``n`` rows, finite, and for the
    classification tasks probabilities (in [0, 1]; multiclass rows summing to 1)."""
    p = np.asarray(prediction, dtype=np.float64)
    if task == "multiclass":
        if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 2:
            raise ValueError(
                f"multiclass prediction must be 2-D (n_rows, n_classes >= 2) with {n} rows like "
                f"y_true; got shape {p.shape}"
            )
    elif p.shape != (n,):
        hint = " (pass P(positive), the second column)" if task == "binary" else ""
        raise ValueError(
            f"{task} prediction must be 1-D with {n} rows like y_true; got shape {p.shape}{hint}"
        )
    if not np.isfinite(p).all():
        raise ValueError(f"prediction has {int((~np.isfinite(p)).sum())} non-finite values")
    if task != "regression":
        if p.min() < 0.0 or p.max() > 1.0:
            raise ValueError(
                f"{task} prediction must be probabilities in [0, 1]; got values in "
                f"[{p.min():.4g}, {p.max():.4g}]"
            )
        if task == "multiclass" and not np.allclose(1.0, p.sum(axis=1)):
            raise ValueError("multiclass prediction rows must sum to 1 (probabilities)")
    return p


def _class_codes(y: NDArray[np.generic], classes: ArrayLike | None, k: int) -> NDArray[np.intp]:
    """Column index of each row's label in ``classes`` (``0 .. k-1`` when ``classes`` is None).

    Raises naming the labels of ``y`` that are not among ``classes``.
    """
    known = np.arange(k) if classes is None else np.asarray(classes)
    if known.dtype == np.bool_:
        known = known.astype(np.int64)
    if known.ndim != 1 or known.size != k:
        raise ValueError(
            f"classes must be 1-D with one label per prediction column ({k}); got shape "
            f"{known.shape}"
        )
    index = pd.Index(known)
    if not index.is_unique:
        raise ValueError(f"classes must be unique; got {known.tolist()}")
    codes = index.get_indexer(y)
    if (codes < 0).any():
        unseen = pd.unique(y[codes < 0])
        raise ValueError(
            f"y_true has labels not in classes {known.tolist()}: unseen {unseen[:10].tolist()}"
        )
    return np.asarray(codes, dtype=np.intp)


def _prepared(
    task: str, y_true: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None
) -> tuple[NDArray[np.generic], Floats, NDArray[np.intp] | None]:
    """Validated ``(y, prediction, class codes)``; codes are None for regression, where
    ``y_true`` must be finite numbers instead."""
    _check_task(task)
    y = _labels(y_true)
    p = _prediction(task, prediction, y.size)
    if task == "regression":
        y_num = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y_num).all():
            raise ValueError(f"y_true has {int((~np.isfinite(y_num)).sum())} non-finite values")
        return y_num, p, None
    k = 2 if task == "binary" else p.shape[1]
    return y, p, _class_codes(y, classes, k)


# --------------------------------------------------------------------------------------------
# Per-row losses and metrics


def row_losses(
    task: str,
    y_true: ArrayLike,
    prediction: ArrayLike,
    classes: ArrayLike | None = None,
    regression_loss: str = "squared",
) -> Floats:
    """The loss of each row, shape ``(n_rows,)``; its mean is the task's loss metric.

    * binary: ``-log p`` for a positive row, ``-log(1 - p)`` for a negative one, ``p`` the
      predicted P(positive) clipped to ``[1e-7, 1 - 1e-7]``. Labels are 0/1 (or booleans), or
      the two ``classes`` with the positive one second.
    * multiclass: ``-log p[row, true class]``, the probability clipped the same way (rows are not
      renormalised after clipping); column j of ``prediction`` is ``classes[j]`` (``0 .. k-1``
      when ``classes`` is None). A label not in ``classes`` raises ``ValueError`` naming it.
    * regression: ``(y - prediction)^2`` (``regression_loss="squared"``, mean = MSE) or
      ``|y - prediction|`` (``"absolute"``, mean = MAE). Ignored for the other tasks.
    """
    if task == "regression" and regression_loss not in REGRESSION_LOSSES:
        raise ValueError(
            f"regression_loss must be one of {REGRESSION_LOSSES}; got {regression_loss!r}"
        )
    y, p, codes = _prepared(task, y_true, prediction, classes)
    if codes is None:
        error = np.asarray(y, dtype=np.float64) - p
        return error * error if regression_loss == "squared" else np.abs(error)
    if task == "binary":
        p_true = np.where(codes == 1, p, 1.0 - p)
    else:
        p_true = p[np.arange(p.shape[0]), codes]
    return -np.log(np.clip(p_true, PROBA_CLIP, 1.0 - PROBA_CLIP))


def _binary_auc(y_true: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None) -> float:
    _, p, codes = _prepared("binary", y_true, prediction, classes)
    assert codes is not None
    if np.unique(codes).size < 2:
        return math.nan  # a single class: no pair to rank
    return float(roc_auc_score(codes, p))


def _macro_auc(y_true: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None) -> float:
    """Mean over the classes present in ``y_true`` of the one-vs-rest AUC of their column.

    With every class present this is sklearn's ``roc_auc_score(multi_class="ovr",
    average="macro", labels=classes)``. A class absent from ``y_true`` has no positives, hence no
    AUC, and is skipped; with fewer than two classes present no class has negatives: NaN.
    """
    _, p, codes = _prepared("multiclass", y_true, prediction, classes)
    assert codes is not None
    present = np.unique(codes)
    if present.size < 2:
        return math.nan
    indicator = (codes[:, None] == present[None, :]).astype(np.int64)
    return float(roc_auc_score(indicator, p[:, present], average="macro"))


def _loss_metric(task: str, kind: str = "squared", root: bool = False) -> Callable[..., float]:
    def compute(y_true: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None) -> float:
        mean = float(row_losses(task, y_true, prediction, classes, regression_loss=kind).mean())
        return math.sqrt(mean) if root else mean

    return compute


@dataclass(frozen=True)
class Metric:
    """A named metric of one task and its direction; call it as ``metric(y_true, prediction)``.

    ``prediction`` is P(positive) (1-D) for binary, the ``(n_rows, n_classes)`` probabilities
    for multiclass (column j is ``classes[j]``, pass ``classes=``; ``0 .. k-1`` when omitted), the
    predicted values (1-D) for regression. Returns NaN when the metric is undefined on these rows
    (see :func:`evaluate`); raises ``ValueError`` on invalid inputs.
    """

    name: str
    """``roc_auc``, ``macro_roc_auc``, ``log_loss``, ``rmse`` or ``mae``."""
    higher_is_better: bool
    task: str
    compute: Callable[..., float] = field(repr=False)

    def __call__(
        self, y_true: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None = None
    ) -> float:
        return float(self.compute(y_true, prediction, classes))


_METRICS: dict[str, tuple[Metric, Metric]] = {
    "binary": (
        Metric("roc_auc", True, "binary", _binary_auc),
        Metric("log_loss", False, "binary", _loss_metric("binary")),
    ),
    "multiclass": (
        Metric("macro_roc_auc", True, "multiclass", _macro_auc),
        Metric("log_loss", False, "multiclass", _loss_metric("multiclass")),
    ),
    "regression": (
        Metric("rmse", False, "regression", _loss_metric("regression", "squared", root=True)),
        Metric("mae", False, "regression", _loss_metric("regression", "absolute")),
    ),
}


def task_metrics(task: str) -> tuple[Metric, Metric]:
    """``(primary, secondary)`` metrics of ``task``: binary ``(roc_auc, log_loss)``, multiclass
    ``(macro_roc_auc, log_loss)``, regression ``(rmse, mae)``. The primary one is gated."""
    _check_task(task)
    return _METRICS[task]


def evaluate(
    task: str, y_true: ArrayLike, prediction: ArrayLike, classes: ArrayLike | None = None
) -> dict[str, float]:
    """``{primary name: value, secondary name: value}`` of ``task`` on these rows.

    NaN (never an exception) for a metric undefined on the rows: binary AUC with one class
    present; multiclass macro AUC skips the classes absent from ``y_true`` and is NaN with fewer
    than two present. ``ValueError`` naming the input on a shape mismatch, non-finite
    predictions (or regression targets), probabilities outside [0, 1] (or multiclass rows not
    summing to 1), or labels not in ``classes``.
    """
    primary, secondary = task_metrics(task)
    return {
        primary.name: primary(y_true, prediction, classes),
        secondary.name: secondary(y_true, prediction, classes),
    }


# --------------------------------------------------------------------------------------------
# Relative gate


@dataclass(frozen=True)
class RelativeGate:
    """One metric's verdict on a candidate, against the champion and an absolute bound."""

    passed: bool
    value: float
    """The candidate's metric."""
    champion: float | None
    """The champion's metric on the same rows (None: no champion)."""
    bar: float
    """The bound the candidate had to reach: a minimum if higher is better, else a maximum."""
    detail: str
    """Human text naming the metric, the value, the bar and how the bar was made."""


def _bar(metric: Metric, champion: float | None, ratio: float, floor: float) -> tuple[float, str]:
    """The bar and the text saying how it was made."""
    bound = "floor" if metric.higher_is_better else "ceiling"
    if champion is None:
        if math.isinf(floor):
            return floor, f"no {bound} (no champion, no absolute bound)"
        return floor, f"the {bound} {_fmt(floor)} (no champion)"
    if metric.higher_is_better:
        scaled, how = ratio * champion, f"{ratio:g} x champion {_fmt(champion)}"
        bar = scaled if scaled > floor else floor  # max() with a NaN is order-dependent
        rule = "max"
    else:
        scaled, how = champion / ratio, f"champion {_fmt(champion)} / {ratio:g}"
        bar = scaled if scaled < floor else floor
        rule = "min"
    if math.isnan(champion):
        bar = math.nan
    return bar, f"{rule}({bound} {_fmt(floor)}, {how} = {_fmt(scaled)}) = {_fmt(bar)}"


def relative_gate(
    metric: Metric, candidate: float, champion: float | None, *, ratio: float, floor: float
) -> RelativeGate:
    """Passes iff the candidate reaches the bar, in the metric's direction.

    Higher is better: ``bar = max(ratio * champion, floor)``, passes iff ``candidate >= bar``.
    Lower is better (an error metric): the ratio applies the other way and ``floor`` is a
    ceiling, ``bar = min(champion / ratio, floor)``, passes iff ``candidate <= bar``. Without a
    champion the bar is ``floor``. So ``ratio = 0.99`` lets a candidate be 1 % worse than the
    champion either way, and a ratio above 1 demands an improvement. Equality passes. A NaN
    candidate fails, and so does a NaN champion (the comparison is undefined; promoting blind is
    the costlier mistake). ``ValueError`` for ``ratio`` outside ``(0, 1.5]``, a NaN ``floor``
    (an infinite one is allowed: no absolute bound) or a negative champion (all five metrics are
    >= 0, and scaling a negative value by the ratio would move the bar the wrong way).
    """
    if not 0.0 < ratio <= 1.5:
        raise ValueError(f"ratio must be in (0, 1.5]; got {ratio}")
    if math.isnan(floor):
        raise ValueError("floor must not be NaN")
    if champion is not None and float(champion) < 0:
        raise ValueError(f"champion {metric.name} must be >= 0 for a ratio bar; got {champion}")
    value = float(candidate)
    champ = None if champion is None else float(champion)
    bar, how = _bar(metric, champ, ratio, floor)
    sign = (">=", "<") if metric.higher_is_better else ("<=", ">")
    direction = "higher" if metric.higher_is_better else "lower"
    if math.isnan(value):
        passed, detail = False, f"candidate {metric.name} is NaN; needs {sign[0]} {how}"
    elif math.isnan(bar):
        passed = False
        detail = f"champion {metric.name} is NaN; cannot compare candidate {_fmt(value)}"
    else:
        passed = value >= bar if metric.higher_is_better else value <= bar
        detail = (
            f"candidate {metric.name} {_fmt(value)} {sign[0] if passed else sign[1]} bar {how} "
            f"({direction} is better)"
        )
    return RelativeGate(bool(passed), value, champ, bar, detail)


# --------------------------------------------------------------------------------------------
# Paired non-inferiority on per-row losses


@dataclass(frozen=True)
class PairedDecision:
    """Is the challenger's mean per-row loss not worse than the champion's by ``margin``?"""

    n_rows: int
    mean_difference: float
    """``mean(challenger loss - champion loss)``: > 0 means the challenger is worse."""
    upper_bound: float
    """One-sided upper confidence bound of the mean difference at ``confidence``."""
    margin: float
    p_value: float
    """One-sided p-value of H0: mean difference >= margin (small: not worse by the margin)."""
    non_inferior: bool
    """``upper_bound < margin``: the challenger may replace the champion."""
    detail: str
    confidence: float = 0.95
    se: float = math.nan
    """Standard error of the mean difference (sample sd / sqrt(n))."""


def _losses(name: str, losses: ArrayLike) -> Floats:
    arr = np.asarray(losses, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


def _paired_differences(champion_losses: ArrayLike, challenger_losses: ArrayLike) -> Floats:
    """``challenger - champion`` per row, after checking both are finite, 1-D, of one length
    and at least 2 rows long."""
    champ = _losses("champion_losses", champion_losses)
    chall = _losses("challenger_losses", challenger_losses)
    if champ.size != chall.size:
        raise ValueError(
            f"champion_losses and challenger_losses must be the same rows; got lengths "
            f"{champ.size} and {chall.size}"
        )
    if champ.size < 2:
        raise ValueError(f"need at least 2 paired rows for a standard error; got {champ.size}")
    return chall - champ


def paired_non_inferiority(
    champion_losses: ArrayLike,
    challenger_losses: ArrayLike,
    *,
    margin: float,
    confidence: float = 0.95,
) -> PairedDecision:
    """Paired one-sided t-test that the challenger's mean loss exceeds the champion's by less
    than ``margin``, on the per-row losses of the same rows (position i is one row in both).

    With d the per-row differences (challenger - champion), ``se = sd(d, ddof=1) / sqrt(n)``,
    ``upper_bound = mean(d) + t_{confidence, n-1} * se`` (Student t with n - 1 degrees of
    freedom: exact for normal differences, the normal approximation for large n) and
    ``non_inferior`` iff ``upper_bound < margin``, equivalently ``p_value < 1 - confidence``
    with ``p_value = T_{n-1}.cdf((mean(d) - margin) / se)``. If H0 holds at its boundary (true
    mean difference = margin) the decision says non-inferior in about ``1 - confidence`` of
    samples. With no variability (se = 0) the decision is ``mean(d) < margin`` and the p-value 0
    or 1. ``ValueError`` on lengths that differ, fewer than 2 rows, non-finite losses, a NaN or
    negative margin, or confidence outside (0.5, 1).
    """
    if not margin >= 0 or math.isinf(margin):
        raise ValueError(f"margin must be finite and >= 0; got {margin}")
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1); got {confidence}")
    diff = _paired_differences(champion_losses, challenger_losses)
    n = diff.size
    mean = float(diff.mean())
    se = float(diff.std(ddof=1)) / math.sqrt(n)
    if se > 0:
        upper = mean + float(student_t.ppf(confidence, n - 1)) * se
        p_value = float(student_t.cdf((mean - margin) / se, n - 1))
    else:  # every row differs by the same amount
        upper, p_value = mean, (0.0 if mean < margin else 1.0)
    non_inferior = bool(upper < margin)
    verdict = "non-inferior" if non_inferior else "not shown non-inferior: keep the champion"
    detail = (
        f"challenger - champion mean loss {mean:+.4g} over {n} paired rows, "
        f"{confidence:.0%} one-sided upper bound {upper:+.4g} "
        f"{'<' if non_inferior else '>='} margin {margin:.4g} "
        f"(p={p_value:.3g} for H0 difference >= margin, paired t, {n - 1} df); {verdict}"
    )
    return PairedDecision(
        n, mean, upper, float(margin), p_value, non_inferior, detail, confidence, se
    )


# --------------------------------------------------------------------------------------------
# Models and stored predictions


def predict(task: str, model: object, features: pd.DataFrame) -> Floats:
    """What a fitted pipeline predicts for ``features`` in the task's shape: P(positive) (1-D)
    for binary, the ``(n_rows, n_classes)`` probabilities for multiclass (columns in
    ``model.classes_`` order), the predicted values (1-D) for regression."""
    _check_task(task)
    if task == "regression":
        return np.asarray(model.predict(features), dtype=np.float64)  # type: ignore[attr-defined]
    proba = np.asarray(model.predict_proba(features), dtype=np.float64)  # type: ignore[attr-defined]
    return proba[:, 1] if task == "binary" else proba


def model_classes(task: str, model: object) -> list[str] | None:
    """The class labels of a multiclass model as text (the order of its probability columns);
    None for the other tasks."""
    if task != "multiclass":
        return None
    return [str(c) for c in model.classes_]  # type: ignore[attr-defined]


def prediction_of(
    frame: pd.DataFrame, task: str, prefix: str = ""
) -> tuple[Floats, list[str] | None]:
    """The stored prediction of one model in joined rows and, for multiclass, its classes.

    ``prefix`` is ``""`` for the champion (columns ``score``, ``proba``, ``classes``),
    ``"challenger_"`` or ``"previous_champion_"``. Binary and regression read ``<prefix>score``;
    multiclass stacks the ``<prefix>proba`` lists and reads the class order from the JSON in
    ``<prefix>classes`` (one version scored these rows, so the first row's is every row's).
    """
    import json

    _check_task(task)
    if task != "multiclass":
        return frame[f"{prefix}score"].to_numpy(dtype=np.float64), None
    column = frame[f"{prefix}proba"]
    if not len(frame):
        return np.empty((0, 0)), []
    classes = [str(c) for c in json.loads(str(frame[f"{prefix}classes"].iloc[0]))]
    return np.vstack([np.asarray(p, dtype=np.float64) for p in column]), classes


def known_label_rows(task: str, y: ArrayLike, classes: list[str] | None) -> NDArray[np.bool_]:
    """Rows whose label the model can be scored on: for multiclass, labels among ``classes``
    (a label the model never saw in training has no probability column: such rows are counted
    and left out of the metrics, never an error); every row for the other tasks."""
    labels = np.asarray(y)
    if task != "multiclass" or classes is None:
        return np.ones(labels.shape[0], dtype=bool)
    return np.isin(labels.astype(str), np.asarray(classes, dtype=str))
