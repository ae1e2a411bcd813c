"""Shadow canary: is the challenger not meaningfully worse than the champion on the same live rows?

Binary: a non-inferiority test on the paired AUC difference with a margin, by DeLong's covariance
of correlated AUCs (DeLong, DeLong & Clarke-Pearson 1988, with the midrank algorithm of Sun & Xu
2014) or by a paired bootstrap. Multiclass and regression (:func:`evaluate_canary_task`): a
paired t-test of non-inferiority on the per-row losses (log loss, squared error) with a margin
relative to the champion's mean loss. Why paired, and why non-inferiority: docs/release.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm, rankdata
from scipy.stats import t as student_t

from retrain_assets.lib.training.tasks import (
    known_label_rows,
    paired_non_inferiority,
    row_losses,
    task_metrics,
)

METHODS: tuple[str, ...] = ("delong", "paired_bootstrap")
LOSS_METHOD = "paired_t_losses"
"""The method of the multiclass and regression canary, whatever binary method is configured."""
LOSS_NAMES: dict[str, str] = {"multiclass": "log_loss", "regression": "squared_error"}
"""The per-row loss each non-binary task's canary compares (``CanaryResult.metric``)."""

_BOOT_CELLS = 1_000_000
"""Resamples are processed in chunks of about this many (resample, row) cells to bound memory;
the chunking is fixed, so results depend only on ``seed``."""


class NotEnoughData(ValueError):
    """Too few labelled shadow rows (or only one class) to decide yet; the caller should wait.

    A ``ValueError`` subclass so callers may catch either; the distinct type lets a sensor tell
    "wait for more labels" apart from a genuine input error.
    """


@dataclass(frozen=True)
class CanarySettings:
    """When the canary decides and how strict it is."""

    min_rows: int = 2000
    """Labelled shadow rows (scored by both models) needed before deciding."""
    margin: float = 0.01
    """Non-inferiority margin. Binary: on AUC, the challenger's may be at most this much lower.
    Multiclass and regression: relative, the challenger's mean per-row loss may be at most
    ``margin x champion's mean loss`` higher (see :func:`evaluate_canary_task`)."""
    confidence: float = 0.95
    """One-sided confidence level of the lower bound on the AUC difference."""
    n_boot: int = 2000
    """Resamples for ``paired_bootstrap``."""
    seed: int = 0
    """Seed of the bootstrap resampling (the DeLong method is deterministic)."""

    def __post_init__(self) -> None:
        if self.min_rows < 2:
            raise ValueError(f"min_rows must be >= 2; got {self.min_rows}")
        if not 0.0 <= self.margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5); got {self.margin}")
        if not 0.5 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0.5, 1); got {self.confidence}")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be >= 100 for usable percentiles; got {self.n_boot}")


@dataclass(frozen=True)
class CanaryResult:
    """The paired comparison of challenger and champion on the same labelled live rows.

    Binary compares AUCs (``metric = "roc_auc"``). Multiclass and regression compare mean per-row
    losses (``metric`` ``"log_loss"`` / ``"squared_error"``, ``method = "paired_t_losses"``):
    ``champion_auc`` and ``challenger_auc`` are then NaN, the two mean losses are
    ``champion_value`` / ``challenger_value``, and every difference and bound keeps the sign
    convention "positive: challenger better", i.e. champion loss - challenger loss, in the
    loss's own units; ``margin`` is then the absolute margin on that loss.
    """

    n_rows: int
    """Rows compared (multiclass: without the ``unseen_labels`` rows)."""
    champion_auc: float
    challenger_auc: float
    difference: float
    """``challenger_auc - champion_auc`` on all rows (positive: challenger better); for a loss
    ``champion_value - challenger_value``."""
    ci_low: float
    """One-sided lower confidence bound of ``difference`` at ``confidence``: DeLong
    ``difference - z_conf * se``; bootstrap the ``1 - confidence`` quantile of the resampled
    differences. This is the bound the decision uses."""
    ci_high: float
    """The matching one-sided upper bound at ``confidence`` (DeLong ``difference + z_conf * se``;
    bootstrap the ``confidence`` quantile). Together, ``[ci_low, ci_high]`` is a two-sided
    interval at level ``2 * confidence - 1`` (90 % for confidence 0.95)."""
    p_value: float
    """One-sided p-value for H0: ``difference <= -margin`` (small: the challenger is not
    meaningfully worse). DeLong ``1 - Phi((difference + margin) / se)``; bootstrap
    ``(1 + #{resampled difference <= -margin}) / (n_boot + 1)``."""
    method: str
    """``"delong"`` or ``"paired_bootstrap"``."""
    non_inferior: bool
    """``ci_low > -margin``: the challenger may be promoted."""
    reason: str
    """Human text naming the figures behind the decision."""
    margin: float = 0.01
    confidence: float = 0.95
    se: float = math.nan
    """Standard error of ``difference`` (DeLong: sqrt of the variance; bootstrap: std of the
    resampled differences; losses: sd of the per-row differences / sqrt(n))."""
    metric: str = "roc_auc"
    """What is compared: ``roc_auc`` (binary), ``log_loss`` (multiclass), ``squared_error``
    (regression)."""
    champion_value: float = math.nan
    """The champion's figure in ``metric``: its AUC (binary) or mean per-row loss."""
    challenger_value: float = math.nan
    """The challenger's figure in ``metric``."""
    unseen_labels: int = 0
    """Multiclass rows left out because their label is not among a model's classes."""

    def to_metadata(self) -> dict[str, float | int | str | bool]:
        """A flat dict of scalars for Dagster metadata / MLflow tags.

        Binary: ``n_rows, champion_auc, challenger_auc, difference, ci_low, ci_high, se,
        p_value, margin, confidence, method, non_inferior, reason, metric``. Loss tasks: the
        same without the two AUCs, plus ``champion_value, challenger_value, unseen_labels``.
        """
        if self.metric != "roc_auc":
            return {
                "n_rows": self.n_rows,
                "metric": self.metric,
                "champion_value": self.champion_value,
                "challenger_value": self.challenger_value,
                "unseen_labels": self.unseen_labels,
                **self._decision_metadata(),
            }
        return {
            "n_rows": self.n_rows,
            "champion_auc": self.champion_auc,
            "challenger_auc": self.challenger_auc,
            **self._decision_metadata(),
            "metric": self.metric,
        }

    def _decision_metadata(self) -> dict[str, float | int | str | bool]:
        return {
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "se": self.se,
            "p_value": self.p_value,
            "margin": self.margin,
            "confidence": self.confidence,
            "method": self.method,
            "non_inferior": self.non_inferior,
            "reason": self.reason,
        }


# --------------------------------------------------------------------------------------------
# DeLong


def _as_inputs(
    y: ArrayLike, score_a: ArrayLike, score_b: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Validate and convert: binary labels, finite scores, equal lengths, both classes."""
    y_arr = np.asarray(y)
    a = np.asarray(score_a, dtype=np.float64)
    b = np.asarray(score_b, dtype=np.float64)
    if y_arr.ndim != 1 or a.shape != y_arr.shape or b.shape != y_arr.shape:
        raise ValueError(
            f"y and both scores must be 1-D of equal length; got {y_arr.shape}, {a.shape}, "
            f"{b.shape}"
        )
    if y_arr.dtype != np.bool_:
        values = np.unique(y_arr)
        if not np.isin(values, [0, 1]).all():
            raise ValueError(f"labels must be 0/1 or boolean; got values {values[:10].tolist()}")
    labels = y_arr.astype(bool)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite (no NaN / inf)")
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        raise NotEnoughData(
            f"AUC needs both classes; the {labels.size} labelled rows have {n_pos} positives and "
            f"{labels.size - n_pos} negatives"
        )
    return labels, a, b


def delong_paired(
    y: ArrayLike, score_a: ArrayLike, score_b: ArrayLike
) -> tuple[float, float, float]:
    """``(auc_a, auc_b, var(auc_b - auc_a))`` by DeLong's method for two correlated ROC curves.

    Placement values as differences of midranks (Sun & Xu 2014), O(n log n) instead of the
    textbook m x n comparison matrix: with X the m positive scores, Y the n negative ones,
    Z = X ∪ Y and midranks T_X, T_Y, T_Z,

    * V10_i = (T_Z(X_i) - T_X(X_i)) / n   (share of negatives below positive i, ties count 1/2)
    * V01_j = 1 - (T_Z(Y_j) - T_Y(Y_j)) / m   (share of positives above negative j)
    * AUC = mean(V10);  Cov(AUC) = S10 / m + S01 / n, S10/S01 the sample covariances (ddof 1)
      of the per-model V10 / V01 vectors.

    ``var(auc_b - auc_a) = S[a,a] + S[b,b] - 2 S[a,b]``; the covariance term is what makes the
    test paired. Ties are handled as in the Mann-Whitney statistic (count one half).
    """
    labels, a, b = _as_inputs(y, score_a, score_b)
    scores = np.vstack([a, b])  # (2, N)
    pos = scores[:, labels]  # (2, m)
    neg = scores[:, ~labels]  # (2, n)
    m, n = pos.shape[1], neg.shape[1]

    t_pos = rankdata(pos, axis=1)
    t_neg = rankdata(neg, axis=1)
    t_all = rankdata(np.hstack([pos, neg]), axis=1)

    v10 = (t_all[:, :m] - t_pos) / n  # (2, m)
    v01 = 1.0 - (t_all[:, m:] - t_neg) / m  # (2, n)
    aucs = v10.mean(axis=1)

    s10 = np.cov(v10) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(v01) if n > 1 else np.zeros((2, 2))
    cov = s10 / m + s01 / n
    var_diff = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    # Identical or perfectly separating models give 0 up to rounding; never negative.
    return float(aucs[0]), float(aucs[1]), max(var_diff, 0.0)


# --------------------------------------------------------------------------------------------
# Paired bootstrap


def _sorted_groups(score: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row order by score, and the start of each run of tied scores in that order."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return order, starts


def _weighted_aucs(
    counts: NDArray[np.int64],
    labels: NDArray[np.bool_],
    order: NDArray[np.intp],
    starts: NDArray[np.intp],
) -> NDArray[np.float64]:
    """AUC of each resample, given how often each row was drawn (``counts``, one row each).

    A resample is the original rows with integer weights, so its AUC is the weighted
    Mann-Whitney statistic: sum over tie-groups g of W1_g * (W0 below g + W0_g / 2), divided by
    W1 * W0. With rows pre-sorted by score (once, outside the loop) this is a ``reduceat`` and a
    ``cumsum`` per resample: O(n) instead of a sort, and no per-resample Python work.
    """
    c = counts[:, order]
    is_pos = labels[order]
    w1 = np.add.reduceat(np.where(is_pos, c, 0), starts, axis=1).astype(np.float64)
    w0 = np.add.reduceat(np.where(is_pos, 0, c), starts, axis=1).astype(np.float64)
    below = np.cumsum(w0, axis=1) - w0
    numerator = (w1 * (below + 0.5 * w0)).sum(axis=1)
    denominator = w1.sum(axis=1) * w0.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / denominator  # NaN for a resample that drew a single class


def paired_bootstrap(
    y: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, n_boot: int, seed: int
) -> NDArray[np.float64]:
    """Bootstrap distribution of ``auc_b - auc_a``, resampling rows (the same rows for both).

    Each resample draws one set of row indices and evaluates *both* models on it, so the
    correlation between the two AUCs is kept, as in DeLong. Resamples are drawn as
    ``rng.integers`` row indices, turned into per-row draw counts, and scored by a weighted
    Mann-Whitney statistic on a single pre-sort (see :func:`_weighted_aucs`). A resample that
    happens to draw a single class has no AUC and is dropped (practically impossible at the row
    counts the canary requires).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    labels, a, b = _as_inputs(y, score_a, score_b)
    n = labels.size
    rng = np.random.default_rng(seed)
    groups_a = _sorted_groups(a)
    groups_b = _sorted_groups(b)
    chunk = max(1, _BOOT_CELLS // n)
    out = np.empty(n_boot, dtype=np.float64)
    for lo in range(0, n_boot, chunk):
        k = min(chunk, n_boot - lo)
        idx = rng.integers(0, n, size=(k, n))
        flat = (idx + (np.arange(k) * n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=k * n).reshape(k, n).astype(np.int64)
        out[lo : lo + k] = _weighted_aucs(counts, labels, *groups_b) - _weighted_aucs(
            counts, labels, *groups_a
        )
    return out[np.isfinite(out)]


# --------------------------------------------------------------------------------------------
# Decision


def evaluate_canary(
    y: ArrayLike,
    champion_score: ArrayLike,
    challenger_score: ArrayLike,
    settings: CanarySettings = CanarySettings(),  # frozen, hence safe as a default
    method: str = "delong",
) -> CanaryResult:
    """Non-inferiority of the challenger's AUC against the champion's on the same labelled rows.

    ``non_inferior`` iff the one-sided lower confidence bound (at ``settings.confidence``) of
    ``challenger AUC - champion AUC`` is above ``-settings.margin``. Raises
    :class:`NotEnoughData` (a ``ValueError``) with fewer than ``settings.min_rows`` rows or a
    single class: the caller should wait for more labels rather than decide on noise. Rows are
    expected to be already joined: position i of all three arrays is the same live row.
    """
    n_rows = _row_count(y, method, settings)
    champion_auc, challenger_auc, var = delong_paired(y, champion_score, challenger_score)
    difference = challenger_auc - champion_auc
    if method == "delong":
        ci_low, ci_high, p_value, se = _delong_bounds(difference, var, settings)
    else:
        ci_low, ci_high, p_value, se = _bootstrap_bounds(
            y, champion_score, challenger_score, settings
        )
    non_inferior = bool(ci_low > -settings.margin)
    label = "paired bootstrap" if method == "paired_bootstrap" else "DeLong"
    verdict = (
        "non-inferior: the challenger may be promoted"
        if non_inferior
        else "not shown non-inferior: keep the champion"
    )
    reason = (
        f"challenger AUC {challenger_auc:.4f} vs champion {champion_auc:.4f} on {n_rows} rows: "
        f"difference {difference:+.4f}, {settings.confidence:.0%} one-sided lower bound "
        f"{ci_low:+.4f} {'>' if non_inferior else '<='} -{settings.margin:.4f} margin "
        f"(p={p_value:.3g} for H0 difference <= -{settings.margin:.4f}, {label}); {verdict}"
    )
    return CanaryResult(
        n_rows=n_rows,
        champion_auc=champion_auc,
        challenger_auc=challenger_auc,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        method=method,
        non_inferior=non_inferior,
        reason=reason,
        margin=settings.margin,
        confidence=settings.confidence,
        se=se,
        champion_value=champion_auc,
        challenger_value=challenger_auc,
    )


def _row_count(y: ArrayLike, method: str, settings: CanarySettings) -> int:
    """The number of labelled rows, once the method is known and there are enough to decide."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if np.ndim(y) != 1:
        raise ValueError(f"y must be 1-D; got shape {np.shape(y)}")
    n_rows = int(np.shape(y)[0])
    if n_rows < settings.min_rows:
        raise NotEnoughData(
            f"only {n_rows} labelled shadow rows; the canary needs at least {settings.min_rows} "
            "before deciding (waiting for more labels)"
        )
    return n_rows


def _delong_bounds(
    difference: float, var: float, settings: CanarySettings
) -> tuple[float, float, float, float]:
    """(lower bound, upper bound, p-value for H0 difference <= -margin, se) by the normal law."""
    se = math.sqrt(var)
    z = float(norm.ppf(settings.confidence))
    if se > 0:
        p_value = float(norm.sf((difference + settings.margin) / se))
    else:  # no sampling variability at all (e.g. identical rankings)
        p_value = 0.0 if difference > -settings.margin else 1.0
    return difference - z * se, difference + z * se, p_value, se


def _bootstrap_bounds(
    y: ArrayLike, champion_score: ArrayLike, challenger_score: ArrayLike, settings: CanarySettings
) -> tuple[float, float, float, float]:
    """(lower bound, upper bound, p-value for H0 difference <= -margin, se) from the percentiles
    of the paired bootstrap's AUC differences."""
    alpha = 1.0 - settings.confidence
    diffs = paired_bootstrap(
        y, champion_score, challenger_score, n_boot=settings.n_boot, seed=settings.seed
    )
    if diffs.size == 0:
        raise NotEnoughData("every bootstrap resample drew a single class")
    ci_low, ci_high = (float(q) for q in np.quantile(diffs, [alpha, 1.0 - alpha]))
    se = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
    p_value = float((1 + np.count_nonzero(diffs <= -settings.margin)) / (diffs.size + 1))
    return ci_low, ci_high, p_value, se


# --------------------------------------------------------------------------------------------
# Any task


def evaluate_canary_task(
    task: str,
    y: ArrayLike,
    champion_prediction: ArrayLike,
    challenger_prediction: ArrayLike,
    settings: CanarySettings = CanarySettings(),
    method: str = "delong",
    classes: ArrayLike | None = None,
    challenger_classes: ArrayLike | None = None,
) -> CanaryResult:
    """The canary in ``task``'s terms; binary is exactly :func:`evaluate_canary` (AUC).

    Multiclass and regression: paired non-inferiority of the per-row losses on the same rows
    (:func:`~retrain_assets.lib.training.tasks.paired_non_inferiority`, a one-sided paired t at
    ``settings.confidence``; ``method`` is then only checked and the result's method is
    ``"paired_t_losses"``). Losses: multiclass log loss, prediction ``(n_rows, n_classes)``
    probabilities in ``classes`` order (``challenger_classes``, default ``classes``, for the
    challenger's columns); regression squared error of the predicted values.

    The margin is relative: ``margin_abs = settings.margin x mean champion loss``, so one setting
    fits any scale of target (for regression a relative margin m on the mean squared error lets
    the challenger's RMSE be about m / 2 worse). ``non_inferior`` iff the lower bound of
    ``champion loss - challenger loss`` is above ``-margin_abs``. Multiclass rows whose label is
    not among both models' classes are left out and counted in ``unseen_labels``. Raises
    :class:`NotEnoughData` with fewer than ``settings.min_rows`` rows left to compare.
    """
    if task == "binary":
        return evaluate_canary(y, champion_prediction, challenger_prediction, settings, method)
    task_metrics(task)  # ValueError naming an unknown task
    if method not in (*METHODS, LOSS_METHOD):
        raise ValueError(f"method must be one of {(*METHODS, LOSS_METHOD)}; got {method!r}")
    y_k, champ, chall, unseen = _known_rows(
        task, y, champion_prediction, challenger_prediction, classes, challenger_classes
    )
    n_rows = int(y_k.shape[0])
    if n_rows < settings.min_rows:
        raise NotEnoughData(
            f"only {n_rows} labelled shadow rows ({unseen} more with labels a model never saw); "
            f"the canary needs at least {settings.min_rows} before deciding (waiting for more "
            "labels)"
        )
    champ_loss = row_losses(task, y_k, champ, _text(classes))
    second = classes if challenger_classes is None else challenger_classes
    chall_loss = row_losses(task, y_k, chall, _text(second))
    return _loss_result(task, champ_loss, chall_loss, unseen, settings)


def _text(classes: ArrayLike | None) -> list[str] | None:
    return None if classes is None else [str(c) for c in np.asarray(classes).tolist()]


def _known_rows(
    task: str,
    y: ArrayLike,
    champion_prediction: ArrayLike,
    challenger_prediction: ArrayLike,
    classes: ArrayLike | None,
    challenger_classes: ArrayLike | None,
) -> tuple[NDArray[np.generic], NDArray[np.float64], NDArray[np.float64], int]:
    """``(y, champion, challenger, unseen)`` restricted to rows both models can be scored on."""
    y_arr = np.asarray(y)
    champ = np.asarray(champion_prediction, dtype=np.float64)
    chall = np.asarray(challenger_prediction, dtype=np.float64)
    if y_arr.ndim != 1 or champ.shape[:1] != y_arr.shape or chall.shape[:1] != y_arr.shape:
        raise ValueError(
            f"y must be 1-D and both predictions have its {y_arr.shape[:1]} rows; got shapes "
            f"{y_arr.shape}, {champ.shape}, {chall.shape}"
        )
    first = _text(classes)
    second = first if challenger_classes is None else _text(challenger_classes)
    known = known_label_rows(task, y_arr, first) & known_label_rows(task, y_arr, second)
    if task == "multiclass" and first is not None:
        y_arr = y_arr.astype(str)
    return y_arr[known], champ[known], chall[known], int((~known).sum())


def _loss_result(
    task: str,
    champ_loss: NDArray[np.float64],
    chall_loss: NDArray[np.float64],
    unseen: int,
    settings: CanarySettings,
) -> CanaryResult:
    """The paired t on per-row losses, in :class:`CanaryResult`'s "positive: challenger better"
    convention."""
    champion, challenger = float(champ_loss.mean()), float(chall_loss.mean())
    margin = settings.margin * champion
    decision = paired_non_inferiority(
        champ_loss, chall_loss, margin=margin, confidence=settings.confidence
    )
    n = decision.n_rows
    difference = -decision.mean_difference
    ci_low = -decision.upper_bound
    spread = float(student_t.ppf(settings.confidence, n - 1)) * decision.se
    ci_high = difference + spread if decision.se > 0 else difference
    name = LOSS_NAMES[task]
    verdict = (
        "non-inferior: the challenger may be promoted"
        if decision.non_inferior
        else "not shown non-inferior: keep the champion"
    )
    reason = (
        f"challenger mean {name} {challenger:.4g} vs champion {champion:.4g} on {n} rows"
        f"{f' ({unseen} rows with unseen labels left out)' if unseen else ''}: difference "
        f"(champion - challenger, positive: challenger better) {difference:+.4g}, "
        f"{settings.confidence:.0%} one-sided lower bound {ci_low:+.4g} "
        f"{'>' if decision.non_inferior else '<='} -{margin:.4g} margin ({settings.margin:g} x "
        f"champion mean {name} {champion:.4g}) (p={decision.p_value:.3g} for H0 difference <= "
        f"-margin, paired t on per-row losses, {n - 1} df); {verdict}"
    )
    return CanaryResult(
        n_rows=n,
        champion_auc=math.nan,
        challenger_auc=math.nan,
        difference=difference,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=decision.p_value,
        method=LOSS_METHOD,
        non_inferior=decision.non_inferior,
        reason=reason,
        margin=margin,
        confidence=settings.confidence,
        se=decision.se,
        metric=name,
        champion_value=champion,
        challenger_value=challenger,
        unseen_labels=unseen,
    )
