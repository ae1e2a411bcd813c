"""The statistics behind the drift engine, and the per-column reference profiles.

PSI, KS from ECDF counts with its error bound, the KS p-value, chi² and p-value corrections, as
vectorised numpy (scipy only for distribution functions), each held to scipy by the tests.
Derivations: docs/drift.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy.stats import distributions, false_discovery_control

from retrain_assets.lib.drift.grid_index import GridIndex, scan

PSI_EPS = 1e-4
"""Floor for a bin's share in PSI (an empty bin counts as 0.01 %), so that ln(c/r) is finite."""

_SMIRNOV_MIN_N, _SMIRNOV_MAX_N = 2_000, 1_000_000
_SMIRNOV_TERMS = 1_024  # terms of the strided Birnbaum–Tingey sum (smirnov_sf)


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index Σ (c−r)·ln(c/r) over matching bins; shares floored at PSI_EPS."""
    r = np.maximum(ref_counts / max(ref_counts.sum(), 1), PSI_EPS)
    c = np.maximum(cur_counts / max(cur_counts.sum(), 1), PSI_EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """How likely sampling noise alone puts the current sample this far from the reference, over
    the PSI's own bins: Pearson's χ² homogeneity test (``chi2_test``). NaN if a side is empty.

    PSI under no drift averages about (K − 1)(1/n + 1/m), so "PSI > 0.2" alone fires on noise
    for small batches; Pearson's χ² is calibrated where the χ² law of PSI itself is not
    (docs/drift.md)."""
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return float("nan")
    return chi2_test(ref_counts, cur_counts)[1]


def interleave(points: np.ndarray) -> np.ndarray:
    """Search keys (float just below p, p) per point: #(x <= the float below p) == #(x < p), so
    ONE ``searchsorted(sorted_x, keys, side="right")`` counts x < p and x <= p for every p."""
    keys = np.empty(2 * points.size)
    keys[0::2] = np.nextafter(points, -np.inf)
    keys[1::2] = points
    return keys


def ecdf_gaps(
    ref_le: np.ndarray, ref_lt: np.ndarray, n: int, cur_le: np.ndarray, cur_lt: np.ndarray, m: int
) -> tuple[float, np.ndarray]:
    """KS gap D at sorted points p_j (and just left of them), and how far the gap can reach
    inside each open cell (p_j, p_{j+1}); counts are of values <= p_j (le) and < p_j (lt).

    At every distinct reference value D is ``scipy.stats.ks_2samp``'s statistic; on a coarser
    grid ``D <= true D <= D + max(0, max(reach) - D)`` (derivation: docs/drift.md).
    """
    d_le = ref_le / n - cur_le / m
    d_lt = ref_lt / n - cur_lt / m
    d = float(max(np.abs(d_le).max(), np.abs(d_lt).max()))
    a = (ref_lt[1:] - ref_le[:-1]) / n
    b = (cur_lt[1:] - cur_le[:-1]) / m
    left = d_le[:-1]
    return d, np.maximum(np.abs(left + a), np.abs(left - b))


def smirnov_sf(n: int, e: float) -> float:
    """P(D+_n >= e), the one-sided Smirnov tail, by the exact Birnbaum–Tingey sum in log space.

    ``scipy.special.smirnov`` evaluates the same sum term by term in a scalar loop; this is the
    vectorised sum. Above ``_SMIRNOV_TERMS`` terms it takes every h-th term times h: the term is
    a smooth function of j, many steps h wide, so the two sums agree to rounding (Poisson
    summation; docs/drift.md), and the cost stays flat in n.
    """
    last = int(np.floor(n * (1.0 - e)))
    step = max(1, last // _SMIRNOV_TERMS)
    j = np.arange(0, last + 1, step, dtype=np.float64)
    base = 1.0 - e - j / n
    with np.errstate(divide="ignore"):
        logs = (
            special.gammaln(n + 1.0)
            - special.gammaln(j + 1.0)
            - special.gammaln(n - j + 1.0)
            + (n - j) * np.log(np.where(base > 0, base, 0.0))
            + (j - 1.0) * np.log(e + j / n)
        )
    top = logs.max()  # logsumexp by hand: scipy's costs 10x the sum here
    return float(e * step * np.exp(top) * np.exp(logs - top).sum())


def ks_pvalue(d: float, n: int, m: int) -> float:
    """The two-sided asymptotic KS p-value of ``ks_2samp(method="asymp")``.

    That is ``kstwo.sf(D, round(n·m/(n+m)))``. scipy's kstwo takes the 2·smirnov branch when
    2.2 <= N·D² < 370; there, for 2 000 < N <= 10⁶ (above 10⁶ scipy switches to an asymptotic
    formula), the same sum is evaluated by ``smirnov_sf``. Every other case is scipy's own call.
    """
    if not np.isfinite(d) or n < 1 or m < 1:
        return float("nan")
    big, small = sorted([float(n), float(m)], reverse=True)
    size = float(np.round(big * small / (big + small)))
    t = size * d
    in_branch = 1.0 < t < size - 1.0 and d < 0.5 and 2.2 <= t * d < 370.0
    if in_branch and _SMIRNOV_MIN_N < size <= _SMIRNOV_MAX_N:
        return float(np.clip(2.0 * smirnov_sf(int(size), d), 0.0, 1.0))
    return float(distributions.kstwo.sf(d, size))


def chi2_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, float]:
    """chi², p-value and Cramér's V of the 2×K table over buckets non-empty on either side.

    Same numbers as ``scipy.stats.chi2_contingency(table, correction=False)``; V is
    sqrt(chi² / (N · (min(2, K) − 1))), 0 when fewer than two buckets are present.
    """
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]]).astype(np.float64)
    k = table.shape[1]
    total = table.sum()
    if k < 2 or table.sum(axis=1).min() == 0:
        return 0.0, 1.0, 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    stat = float(((table - expected) ** 2 / expected).sum())
    p_value = float(special.chdtrc(k - 1, stat))  # = chi2.sf without the distribution object
    return stat, p_value, float(np.sqrt(stat / (total * (min(2, k) - 1))))


def adjust_pvalues(p: np.ndarray, method: str) -> np.ndarray:
    """Benjamini–Hochberg ("bh"), Holm ("holm") or no ("none") correction; NaN stays NaN.

    The family is the columns of one comparison with a p-value (NaN p-values do not count).
    """
    if method not in ("bh", "holm", "none"):
        raise ValueError(f"unknown correction {method!r}; expected 'bh', 'holm' or 'none'")
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size == 0 or method == "none":
        out[ok] = p[ok]
    elif method == "bh":
        out[ok] = false_discovery_control(p[ok], method="bh")
    else:
        out[ok] = _holm(p[ok])
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (scipy has none): sorted p times k, k-1, ..., 1, monotone."""
    order = np.argsort(p, kind="stable")
    k = p.size
    adjusted = np.empty(k)
    adjusted[order] = np.maximum.accumulate(p[order] * (k - np.arange(k)))
    return np.minimum(adjusted, 1.0)


# ---- per-column profiles: fitted once on the reference, compared with each batch ----------


def floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    """The column as float64 with NaN for missing; a view (no copy) when it already is float64."""
    try:
        return frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValueError(f"numerical column {col!r} is not numeric: {err}") from err


def numbers(frame: pd.DataFrame, col: str) -> np.ndarray:
    """The column as stored when its dtype is a numpy bool, int or float (no copy: the index
    reads it in float64 chunk by chunk), else as ``floats``."""
    values = frame[col].to_numpy()
    return values if values.dtype.kind in "biuf" else floats(frame, col)


def _value_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """(distinct non-missing values as strings, their counts, missing count) in one hash pass
    (``value_counts`` counts inside the hash table, unlike factorize + bincount)."""
    counts = series.value_counts(dropna=False, sort=False)
    na = counts.index.isna()
    text = np.asarray(counts.index[~na], dtype=object).astype(str)
    values = counts.to_numpy(dtype=np.int64)
    return text, values[~na], int(values[na].sum())


def _all_missing_row(kind: str, test: str, mode: str) -> dict[str, Any]:
    nan = float("nan")
    return dict(kind=kind, test=test, statistic=nan, p_value=nan, effect=nan, psi=nan,
                psi_p_value=nan, missing_share=1.0, unseen_share=nan, n_current=0, mode=mode,
                ks_error_bound=0.0, all_missing=True)  # fmt: skip


@dataclass(frozen=True)
class NumericalColumn:
    """A numerical column's reference ECDF on a quantile grid and, if kept, at every value.

    ``grid_le``/``grid_lt`` count reference values <= / < each grid point; the grid holds
    ``ks_grid`` 'lower' quantiles (real reference values, incl. min and max) and the PSI edges.
    ``exact_points``/``exact_le`` are all distinct values and their cumulative counts.
    """

    name: str
    n: int  # non-missing reference values
    missing: int
    grid: np.ndarray
    grid_le: np.ndarray
    grid_lt: np.ndarray
    psi_edges: np.ndarray  # interior PSI edges, deduped; a subset of the grid
    exact_points: np.ndarray | None = None  # kept only when exact comparisons are possible
    exact_le: np.ndarray | None = None

    @cached_property
    def _keys(self) -> np.ndarray:
        return interleave(self.grid)

    @cached_property
    def _psi_pos(self) -> np.ndarray:
        return np.searchsorted(self.grid, self.psi_edges)

    @cached_property
    def _grid_in_exact(self) -> np.ndarray:
        assert self.exact_points is not None
        return np.searchsorted(self.exact_points, self.grid)

    @classmethod
    def fit(
        cls, name: str, x: np.ndarray, psi_bins: int, ks_grid: int, keep_exact: bool
    ) -> NumericalColumn:
        srt = np.sort(x)
        n = int(np.searchsorted(srt, np.inf, side="right"))  # NaN sorts after +inf
        if n == 0:
            raise ValueError(f"reference column {name!r} has no non-missing values")
        srt = srt[:n]

        def pick(levels: np.ndarray) -> np.ndarray:  # 'lower' quantiles: real reference values
            return srt[np.floor(levels * (n - 1)).astype(np.int64)]

        edges = np.unique(pick(np.arange(1, psi_bins) / psi_bins))  # deduped for discrete data
        grid = np.union1d(pick(np.linspace(0.0, 1.0, ks_grid)), edges)
        le, lt = np.searchsorted(srt, grid, "right"), np.searchsorted(srt, grid, "left")
        if not keep_exact:
            return cls(name, n, x.size - n, grid, le, lt, edges)
        last = np.append(srt[1:] != srt[:-1], True)  # the last copy of each distinct value
        return cls(name, n, x.size - n, grid, le, lt, edges, srt[last], np.flatnonzero(last) + 1)

    @cached_property
    def index(self) -> GridIndex | None:
        """Value -> cell index that counts a column at the search points without sorting it;
        None when the reference is too discrete for one (then ``compare`` sorts)."""
        return GridIndex.plan(self.grid, self.grid_le, self.grid_lt, self.n, self._keys)

    def compare(self, x: np.ndarray, exact: bool) -> dict[str, Any]:
        """KS and PSI of the current values x (NaN = missing) against the reference, by sorting
        x (``compare_many`` counts without a sort). In exact mode the reference values inside
        the few cells whose reach exceeds the grid's D are looked up as well, which makes D
        exact (the same maximum a full pass over every value would find)."""
        exact = exact and self.exact_points is not None
        srt = np.sort(x)  # a copy; NaN last
        m = int(np.searchsorted(srt, np.inf, side="right"))
        srt = srt[:m]
        found = np.searchsorted(srt, self._keys, side="right")  # the one search of the grid
        return self.from_counts(found, m, x.size, srt if exact else None)

    def from_counts(
        self, found: np.ndarray, m: int, size: int, srt: np.ndarray | None = None
    ) -> dict[str, Any]:
        """The result row from ``found``, the counts of current values <= each search point
        (``_keys``), m of the ``size`` values being non-missing; with ``srt``, the sorted
        values, D is refined to the exact one."""
        mode = "binned" if srt is None else "exact"
        if m == 0:
            return _all_missing_row("numerical", "ks", mode)
        cur_lt, cur_le = found[0::2], found[1::2]
        if self.grid[0] == -np.inf:  # no float precedes -inf: nothing is < -inf
            cur_lt[0] = 0
        d, reach = ecdf_gaps(self.grid_le, self.grid_lt, self.n, cur_le, cur_lt, m)
        if srt is not None:
            d, bound = self._refine(d, reach, srt), 0.0
        else:
            bound = max(0.0, float(reach.max()) - d) if reach.size else 0.0
        ref_bins = np.diff(self.grid_le[self._psi_pos], prepend=0, append=self.n)
        cur_bins = np.diff(cur_le[self._psi_pos], prepend=0, append=m)
        return dict(kind="numerical", test="ks", statistic=d, p_value=ks_pvalue(d, self.n, m),
                    effect=d, psi=psi(ref_bins, cur_bins),
                    psi_p_value=psi_pvalue(ref_bins, cur_bins), missing_share=1 - m / size,
                    unseen_share=float("nan"), n_current=m, mode=mode, ks_error_bound=bound,
                    all_missing=False)  # fmt: skip

    def _refine(self, d: float, reach: np.ndarray, srt: np.ndarray) -> float:
        """Exact D: evaluate the gap at every reference value inside cells that could beat d."""
        assert self.exact_points is not None and self.exact_le is not None
        cells = np.flatnonzero(reach > d - 1e-12)
        starts = self._grid_in_exact[cells] + 1  # exact values strictly inside each cell
        lengths = self._grid_in_exact[cells + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return d
        idx = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        found = np.searchsorted(srt, interleave(self.exact_points[idx]), side="right")
        le, lt = self.exact_le[idx], self.exact_le[idx - 1]  # idx >= 1: never the minimum
        gaps = np.maximum(np.abs(le / self.n - found[1::2] / srt.size),
                          np.abs(lt / self.n - found[0::2] / srt.size))  # fmt: skip
        return max(d, float(gaps.max()))


def compare_many(columns: list[NumericalColumn], values: list[np.ndarray]) -> list[dict[str, Any]]:
    """``NumericalColumn.compare(x, exact=False)`` of each column (whose ``index`` must not be
    None) without a sort: one scan of the rows counts every column (``grid_index.scan``)."""
    indexes = [c.index for c in columns if c.index is not None]
    assert len(indexes) == len(columns), "compare_many takes indexed columns only"
    tallies = scan(values, indexes)
    out = []
    for column, tally, x in zip(columns, tallies, values, strict=True):
        found, m = tally.found()
        out.append(column.from_counts(found, m, x.size))
    return out


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical column's reference counts per category (as strings), unseen and missing."""

    name: str
    categories: np.ndarray  # sorted strings
    counts: np.ndarray  # per category, then unseen (always 0 here), then missing

    @classmethod
    def fit(cls, name: str, series: pd.Series) -> CategoricalColumn:
        text, counts, missing = _value_counts(series)
        if text.size == 0:
            raise ValueError(f"reference column {name!r} has no non-missing values")
        cats = np.unique(text)  # values equal as strings (1 and "1") share a category
        per_cat = np.bincount(np.searchsorted(cats, text), counts, minlength=cats.size)
        return cls(name, cats, np.append(per_cat, [0, missing]).astype(np.int64))

    def buckets(self, series: pd.Series) -> np.ndarray:
        """Current counts per (categories..., unseen, missing), values matched as strings."""
        text, counts, missing = _value_counts(series)
        k = self.categories.size  # >= 1: fit refuses an all-missing reference column
        pos = np.minimum(np.searchsorted(self.categories, text), k - 1)
        where = np.where(self.categories[pos] == text, pos, k)  # k = unseen
        out = np.bincount(where, counts, minlength=k + 2).astype(np.int64)
        out[k + 1] = missing
        return out

    def compare(self, series: pd.Series) -> dict[str, Any]:
        """chi², Cramér's V and PSI over (categories, unseen, missing) of the current values."""
        cur = self.buckets(series)
        rows, missing = int(cur.sum()), int(cur[-1])
        if missing == rows:
            return _all_missing_row("categorical", "chi2", "exact")
        stat, p_value, v = chi2_test(self.counts, cur)
        return dict(kind="categorical", test="chi2", statistic=stat, p_value=p_value, effect=v,
                    psi=psi(self.counts, cur), psi_p_value=p_value,  # the same buckets
                    missing_share=missing / rows,
                    unseen_share=cur[-2] / rows, n_current=rows, mode="exact",
                    ks_error_bound=0.0, all_missing=False)  # fmt: skip
