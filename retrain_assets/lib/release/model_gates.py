"""Promotion gates: is a candidate good enough, and fast enough, to serve?

The AUC gate holds the candidate against the champion on the same held-out rows and an absolute
floor; the latency gate holds the p95 of single-row predictions through the MLflow pyfunc wrapper.
Each :class:`GateResult` carries the figure, the threshold and a sentence with both, for the run
page and the model version's tags. Why these gates: docs/release.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from retrain_assets.lib.training.tasks import relative_gate, task_metrics

MIN_LATENCY_SAMPLES = 200
"""A p95 from fewer single-row calls rests on fewer than 10 tail values: too noisy to gate on."""


def _fmt(value: float) -> str:
    """Registry tags are strings; 4 decimals is enough for AUCs and milliseconds alike."""
    return "nan" if math.isnan(value) else f"{value:.4f}"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on one candidate."""

    gate: str
    """Short name, used in tag keys (``auc``, ``metric``, ``latency``)."""
    passed: bool
    value: float
    """The figure judged (candidate AUC or task metric, p95 latency in ms)."""
    threshold: float
    """The bound it was judged against (minimum AUC, the task metric's bar, maximum p95)."""
    detail: str
    """Human text with the numbers behind the verdict."""

    def to_metadata(self) -> dict[str, float | str | bool]:
        """A flat dict of scalars for Dagster metadata, keys prefixed with the gate name."""
        return {
            f"{self.gate}_passed": self.passed,
            f"{self.gate}_value": self.value,
            f"{self.gate}_threshold": self.threshold,
            f"{self.gate}_detail": self.detail,
        }

    def registry_tags(self) -> dict[str, str]:
        """MLflow model-version tags (string values), e.g. ``gate.auc = passed``."""
        return {
            f"gate.{self.gate}": "passed" if self.passed else "failed",
            f"gate.{self.gate}.value": _fmt(self.value),
            f"gate.{self.gate}.threshold": _fmt(self.threshold),
        }


def auc_gate(
    candidate_auc: float,
    champion_auc: float | None,
    *,
    ratio: float = 0.99,
    floor: float = 0.6,
) -> GateResult:
    """Passes iff ``candidate_auc >= floor`` and (no champion or ``>= ratio * champion_auc``).

    ``threshold = max(floor, ratio * champion_auc)`` (``floor`` without a champion). Why a
    ratio slightly below 1: both AUCs come from the same finite test set, so demanding strict
    improvement would reject a retrain that is as good as the champion by chance about half the
    time; the shadow canary then tests non-inferiority on live rows. A NaN candidate AUC (e.g. a
    single-class test set) fails; so does a NaN champion AUC, since the comparison is then
    undefined and promoting blind is the costlier mistake.
    """
    if ratio <= 0:
        raise ValueError(f"ratio must be > 0; got {ratio}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1]; got {floor}")
    candidate = float(candidate_auc)
    if champion_auc is None:
        threshold = floor
        against = f"the floor {floor:.4f} (no champion)"
    else:
        champion = float(champion_auc)
        scaled = ratio * champion
        threshold = scaled if scaled > floor else floor  # max() with a NaN is order-dependent
        if math.isnan(champion):
            threshold = math.nan
        against = (
            f"max(floor {floor:.4f}, {ratio:g} x champion {champion:.4f} = {scaled:.4f}) "
            f"= {threshold:.4f}"
        )

    if math.isnan(candidate):
        passed, detail = False, f"candidate AUC is NaN; needs >= {against}"
    elif math.isnan(threshold):
        passed, detail = False, f"champion AUC is NaN; cannot compare candidate {candidate:.4f}"
    else:
        passed = candidate >= threshold
        detail = f"candidate {candidate:.4f} {'>=' if passed else '<'} {against}"
    return GateResult("auc", passed, candidate, threshold, detail)


def metric_gate(
    task: str, candidate: float, champion: float | None, *, ratio: float, floor: float
) -> GateResult:
    """The model-quality gate in ``task``'s primary metric (``tasks.task_metrics(task)[0]``).

    Built on :func:`~retrain_assets.lib.training.tasks.relative_gate`, so the bar follows the
    metric's direction: higher is better (binary ``roc_auc``, multiclass ``macro_roc_auc``)
    ``bar = max(ratio * champion, floor)``; lower is better (regression ``rmse``)
    ``bar = min(champion / ratio, floor)`` with ``floor`` acting as a ceiling. ``floor`` may be
    ``-math.inf`` (higher-is-better) or ``math.inf`` (lower-is-better) for no absolute bound; it
    must not be NaN, and ``ratio`` must be in ``(0, 1.5]``. A NaN candidate or champion fails.

    The result is named ``auc`` for binary, so its registry tags stay ``gate.auc``,
    ``gate.auc.value``, ``gate.auc.threshold`` and its verdict and threshold equal
    :func:`auc_gate`'s; for multiclass and regression it is named ``metric`` (tags
    ``gate.metric``, ``gate.metric.value``, ``gate.metric.threshold``). ``detail`` names the
    metric, the bar and the direction.
    """
    metric = task_metrics(task)[0]
    gate = relative_gate(metric, candidate, champion, ratio=ratio, floor=floor)
    name = "auc" if task == "binary" else "metric"
    return GateResult(name, gate.passed, gate.value, gate.bar, gate.detail)


def measure_latency_ms(
    predict: Callable[[pd.DataFrame], object],
    rows: pd.DataFrame,
    n: int = 200,
    warmup: int = 10,
) -> NDArray[np.float64]:
    """Per-call wall times (ms) of ``predict(one-row DataFrame)`` for ``n`` calls.

    Rows are taken in order, cycling through ``rows``. The one-row frames are built before the
    clock starts (slicing is the caller's cost, not the model's); ``warmup`` untimed calls go
    first so lazy initialisation (imports, caches, JIT) does not land in the tail. Timed with
    ``time.perf_counter``, one call at a time, as a serving endpoint handles a request, with
    OpenMP held to one thread: a serving worker answers one row per request, and
    HistGradientBoosting's thread team spinning up for a single row stalls when the cores are
    busy (benchmarks/RESULTS.md, *Retraining cycle*).
    """
    from threadpoolctl import threadpool_limits

    if rows.empty:
        raise ValueError("rows is empty; need at least one row to time predictions")
    if n < 1 or warmup < 0:
        raise ValueError(f"n must be >= 1 and warmup >= 0; got n={n}, warmup={warmup}")
    singles = [rows.iloc[[i]] for i in range(min(len(rows), n + warmup))]
    with threadpool_limits(limits=1, user_api="openmp"):
        return _timed(predict, singles, n, warmup)


def _timed(
    predict: Callable[[pd.DataFrame], object], singles: list[pd.DataFrame], n: int, warmup: int
) -> NDArray[np.float64]:
    for i in range(warmup):
        predict(singles[i % len(singles)])
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        frame = singles[(warmup + i) % len(singles)]
        start = time.perf_counter()
        predict(frame)
        out[i] = (time.perf_counter() - start) * 1000.0
    return out


def latency_gate(latencies_ms: ArrayLike, *, max_p95_ms: float = 100.0) -> GateResult:
    """Passes iff the p95 of single-row latencies is ``<= max_p95_ms``; value = p95 (ms).

    Why p95 and not the mean: the mean hides the occasional slow call that times out a request.
    Needs at least ``MIN_LATENCY_SAMPLES`` (200) finite samples, else ``ValueError``.
    """
    lat = np.asarray(latencies_ms, dtype=np.float64).ravel()
    if lat.size < MIN_LATENCY_SAMPLES:
        raise ValueError(
            f"latency gate needs >= {MIN_LATENCY_SAMPLES} samples for a stable p95; got {lat.size}"
        )
    if not np.isfinite(lat).all():
        raise ValueError("latencies must be finite")
    p95 = float(np.percentile(lat, 95))
    passed = p95 <= max_p95_ms
    detail = (
        f"p95 {p95:.2f} ms {'<=' if passed else '>'} max {max_p95_ms:.2f} ms over {lat.size} "
        f"single-row predictions (median {float(np.median(lat)):.2f} ms, "
        f"max {float(lat.max()):.2f} ms)"
    )
    return GateResult("latency", passed, p95, float(max_p95_ms), detail)


def pyfunc_latency_ms(model_uri: str, rows: pd.DataFrame, n: int = 200) -> NDArray[np.float64]:
    """Single-row predict latency (ms) through ``mlflow.pyfunc.load_model(model_uri)``.

    Why pyfunc and not the sklearn object: a serving endpoint calls the pyfunc wrapper, whose
    schema enforcement and conversions are part of every request's latency. Loading is not
    timed (an endpoint loads once).
    """
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    return measure_latency_ms(model.predict, rows, n=n)
