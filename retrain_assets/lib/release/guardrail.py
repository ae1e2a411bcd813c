"""The post-promotion guardrail: for the first labelled batches after a promotion, the previous
champion keeps being scored in the shadow; if the new champion does worse than it on the same
rows by more than a margin, the promotion is undone.

Binary compares ROC AUCs with an absolute margin. Multiclass and regression compare the task's
primary metric (``tasks.task_metrics(task)[0]``: macro one-vs-rest AUC, RMSE) with a relative
margin, so one setting fits any scale of target."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from retrain_assets.lib.training.tasks import known_label_rows, task_metrics


@dataclass(frozen=True)
class GuardrailVerdict:
    """The new champion against the one it replaced, on the same labelled rows.

    ``new_auc`` / ``previous_auc`` hold the two models' values of ``metric``, the task's primary
    metric: an AUC for binary and multiclass (macro), the RMSE for regression (lower is
    better); :attr:`new_value` / :attr:`previous_value` are task-neutral names for them. None
    before there is a verdict."""

    n_rows: int
    batches: int
    new_auc: float | None
    previous_auc: float | None
    regression: bool
    done: bool  # the watch is over (enough batches without a regression)
    reason: str
    metric: str = "roc_auc"
    unseen_labels: int = 0
    """Multiclass rows left out because their label is not among a model's classes."""

    @property
    def new_value(self) -> float | None:
        """The new champion's ``metric`` (the same number as ``new_auc``)."""
        return self.new_auc

    @property
    def previous_value(self) -> float | None:
        """The previous champion's ``metric`` (the same number as ``previous_auc``)."""
        return self.previous_auc


def assess_guardrail(
    y: np.ndarray,
    new_score: np.ndarray,
    previous_score: np.ndarray,
    *,
    batches: int,
    max_batches: int,
    margin: float,
    min_rows: int,
    task: str = "binary",
    classes: ArrayLike | None = None,
    previous_classes: ArrayLike | None = None,
) -> GuardrailVerdict:
    """Regression when, over at least min_rows rows, the new champion is worse than the previous.

    Binary: new AUC < previous AUC - ``margin`` (absolute). Multiclass and regression: the
    task's primary metric on the same rows, ``margin`` relative to the previous champion's
    value: higher is better (multiclass macro AUC) new < previous x (1 - margin); lower is
    better (regression RMSE) new > previous x (1 + margin). Multiclass scores are the
    ``(n_rows, n_classes)`` probabilities, columns in ``classes`` order (``previous_classes``,
    default ``classes``, for the previous champion's); rows whose label is not among both are
    left out and counted. No verdict below ``min_rows`` rows or while the metric is undefined
    (one class present)."""
    if task != "binary":
        return _task_guardrail(
            task, y, new_score, previous_score, (batches, max_batches, margin, min_rows),
            (classes, previous_classes),
        )  # fmt: skip
    n = len(y)
    if n < min_rows or len(np.unique(y)) < 2:
        done = batches >= max_batches
        why = f"{n} labelled rows scored by both (< {min_rows} or one class): no verdict yet"
        return GuardrailVerdict(n, batches, None, None, False, done, why)
    new, old = float(roc_auc_score(y, new_score)), float(roc_auc_score(y, previous_score))
    regression = new < old - margin
    done = regression or batches >= max_batches
    verdict = "regression: roll back" if regression else "no regression"
    reason = (
        f"new champion AUC {new:.4f} vs previous {old:.4f} on the same {n} rows over {batches} "
        f"batch(es) (margin {margin}): {verdict}"
    )
    return GuardrailVerdict(n, batches, new, old, regression, done, reason)


def _text(classes: ArrayLike | None) -> list[str] | None:
    return None if classes is None else [str(c) for c in np.asarray(classes).tolist()]


def _task_guardrail(
    task: str,
    y: ArrayLike,
    new_score: ArrayLike,
    previous_score: ArrayLike,
    watch: tuple[int, int, float, int],
    both_classes: tuple[ArrayLike | None, ArrayLike | None],
) -> GuardrailVerdict:
    """:func:`assess_guardrail` for multiclass and regression; ``watch`` is
    ``(batches, max_batches, margin, min_rows)``."""
    batches, max_batches, margin, min_rows = watch
    metric = task_metrics(task)[0]
    new_classes = _text(both_classes[0])
    old_classes = new_classes if both_classes[1] is None else _text(both_classes[1])
    labels = np.asarray(y)
    known = known_label_rows(task, labels, new_classes) & known_label_rows(
        task, labels, old_classes
    )
    unseen, n = int((~known).sum()), int(known.sum())
    if task == "multiclass" and new_classes is not None:
        labels = labels.astype(str)
    new = old = math.nan
    if n >= min_rows:
        new = metric(labels[known], np.asarray(new_score)[known], new_classes)
        old = metric(labels[known], np.asarray(previous_score)[known], old_classes)
    if math.isnan(new) or math.isnan(old):
        why = (
            f"{n} labelled rows scored by both (< {min_rows}, or {metric.name} undefined); "
            f"{unseen} with unseen labels: no verdict yet"
        )
        done = batches >= max_batches
        return GuardrailVerdict(n, batches, None, None, False, done, why, metric.name, unseen)
    if metric.higher_is_better:
        bar, regression = old * (1 - margin), new < old * (1 - margin)
    else:
        bar, regression = old * (1 + margin), new > old * (1 + margin)
    done = regression or batches >= max_batches
    verdict = "regression: roll back" if regression else "no regression"
    direction = "higher" if metric.higher_is_better else "lower"
    reason = (
        f"new champion {metric.name} {new:.4f} vs previous {old:.4f} on the same {n} rows over "
        f"{batches} batch(es) ({direction} is better; bar {bar:.4f} = previous x "
        f"(1 {'-' if metric.higher_is_better else '+'} {margin:g}), a relative margin)"
        f"{f'; {unseen} rows with unseen labels left out' if unseen else ''}: {verdict}"
    )
    return GuardrailVerdict(n, batches, new, old, regression, done, reason, metric.name, unseen)
