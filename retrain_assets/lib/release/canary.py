"""Shadow canary: is the challenger not meaningfully worse than the champion on the same live rows?

A non-inferiority test on the paired AUC difference with a margin, by DeLong's covariance of
correlated AUCs (DeLong, DeLong & Clarke-Pearson 1988, with the midrank algorithm of Sun & Xu
2014) or by a paired bootstrap. Why paired, and why non-inferiority: docs/release.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm, rankdata

METHODS: tuple[str, ...] = ("delong", "paired_bootstrap")

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
    """Non-inferiority margin on AUC: the challenger may be at most this much worse."""
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
    """The paired comparison of challenger and champion on the same labelled live rows."""

    n_rows: int
    champion_auc: float
    challenger_auc: float
    difference: float
    """``challenger_auc - champion_auc`` on all rows (positive: challenger better)."""
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
    resampled differences)."""

    def to_metadata(self) -> dict[str, float | int | str | bool]:
        """A flat dict of scalars for Dagster metadata / MLflow tags."""
        return {
            "n_rows": self.n_rows,
            "champion_auc": self.champion_auc,
            "challenger_auc": self.challenger_auc,
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
