"""Data-drift engine: a reference profile fitted once, compared fast with each new batch.

Numerical columns get KS and PSI on reference-quantile bins, categorical ones chi² and PSI; a
column drifts when its PSI is high and beyond noise, or when a test is significant after a
correction across columns *and* its effect size is material. Design and derivations:
docs/drift.md; the formulas live in ``stats``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain_assets.lib.drift import stats as st
from retrain_assets.lib.files import write_bytes, write_json
from retrain_assets.lib.tables import markdown_table

FORMAT, VERSION = "retrain_assets.drift_profile", 1
_ARRAYS = ("grid", "grid_le", "grid_lt", "psi_edges", "exact_points", "exact_le")
_PARALLEL_MIN_ROWS = 50_000  # below this a thread pool costs more than it saves
_INDEX_MIN_ROWS = 50_000  # below this sorting a column costs less than the grid index


@dataclass(frozen=True)
class DriftSettings:
    """Thresholds of the column and dataset verdicts, and how KS is computed."""

    psi_threshold: float = 0.2  # a column with PSI > this is drifted ...
    psi_significance: bool = True  # ... if noise cannot explain it (psi_p_value < alpha)
    alpha: float = 0.05  # level of KS / chi² after the correction across columns
    correction: str = "bh"  # "bh" | "holm" | "none"
    min_ks_effect: float = 0.1  # a significant KS counts only if D >= this
    min_cramers_v: float = 0.1  # a significant chi² counts only if Cramér's V >= this
    drift_share: float = 0.3  # dataset drifts when drifted columns / columns >= this ...
    key_features: tuple[str, ...] = ()  # ... or when any of these drifts
    psi_bins: int = 10  # reference-quantile bins for numerical PSI
    ks_grid: int = 2000  # quantile points of the binned KS
    exact_max_rows: int = 200_000  # mode="auto": exact when both samples have <= this many rows
    mode: str = "auto"  # "auto" | "exact" | "binned"

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_features", tuple(self.key_features))
        if self.correction not in ("bh", "holm", "none"):
            raise ValueError(f"correction must be 'bh', 'holm' or 'none', not {self.correction!r}")
        if self.mode not in ("auto", "exact", "binned"):
            raise ValueError(f"mode must be 'auto', 'exact' or 'binned', not {self.mode!r}")
        if self.psi_bins < 2 or self.ks_grid < 2 or self.exact_max_rows < 1:
            raise ValueError("psi_bins and ks_grid must be >= 2, exact_max_rows >= 1")
        if not (0 < self.alpha < 1 and 0 < self.drift_share <= 1 and self.psi_threshold > 0):
            raise ValueError("need 0 < alpha < 1, 0 < drift_share <= 1 and psi_threshold > 0")


@dataclass(frozen=True)
class DriftResult:
    """One comparison: a row per column (statistics, verdict, reason) and the dataset verdict.

    ``columns``: column, kind ('numerical'|'categorical'), test ('ks'|'chi2'), statistic,
    p_value, p_adjusted (after the correction across columns), effect (KS D or Cramér's V), psi,
    psi_p_value (Pearson's χ² over the PSI's bins: could sampling noise alone move the batch this
    far? corrected likewise; with ``psi_significance`` a PSI above the threshold counts only when
    this is below alpha), drifted, reason ('' when not drifted), missing_share, unseen_share
    (categorical: share of current rows in no reference category; NaN for numerical), n_current
    (values the test used: non-missing numerical values, all rows for categoricals), mode
    ('exact'|'binned'), ks_error_bound (binned KS: exact D <= statistic + bound; else 0), severity
    (how far past its threshold a column is: max(psi / psi_threshold, effect / min effect if
    significant)).
    """

    columns: pd.DataFrame
    share_drifted: float
    drifted: bool
    drifted_columns: list[str]
    max_psi: float
    n_reference: int
    n_current: int
    reason: str = ""  # why the dataset verdict is what it is

    def to_markdown(self) -> str:
        """Per-column table for a human (Dagster metadata); drifted rows are marked in bold."""
        head = ["column", "kind", "test", "statistic", "p_adj", "effect", "psi", "missing",
                "drifted", "reason"]  # fmt: skip
        rows = [_markdown_row(r) for r in self.columns.itertuples(index=False)]
        verdict = (
            f"**{'DRIFT' if self.drifted else 'no drift'}**: {self.reason} "
            f"(reference {self.n_reference:,} rows, current {self.n_current:,} rows)"
        )
        return f"{verdict}\n\n{markdown_table(head, rows)}"

    def evidence(self, top: int = 3) -> str:
        """The strongest drifted columns in a few words ('' when none drifted)."""
        rows = self.columns[self.columns["drifted"]]
        rows = rows.assign(_rank=rows["severity"]).sort_values("_rank", ascending=False)
        parts = []
        for r in rows.head(top).itertuples(index=False):
            if r.reason == "all values missing":
                parts.append(f"missing({r.column})=100%")
            elif r.reason.startswith("psi"):
                parts.append(f"psi({r.column})={r.psi:.2f}")
            else:
                parts.append(
                    f"{r.test}({r.column}) {'D' if r.test == 'ks' else 'V'}={r.effect:.2f}"
                )
        return ", ".join(parts)


def _markdown_row(r: Any) -> list[str]:
    name = f"**{r.column}**" if r.drifted else str(r.column)
    return [name, r.kind, r.test, _fmt(r.statistic), _fmt(r.p_adjusted), _fmt(r.effect),
            _fmt(r.psi), f"{r.missing_share:.1%}", "**yes**" if r.drifted else "no",
            r.reason or ""]  # fmt: skip


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return ""
    return f"{value:.2g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"


class ReferenceProfile:
    """What 'normal' looks like, reduced once (fit) so that each comparison is cheap."""

    def __init__(
        self,
        numerical: list[st.NumericalColumn],
        categorical: list[st.CategoricalColumn],
        n_rows: int,
        settings: DriftSettings,
    ) -> None:
        self._num, self._cat = numerical, categorical
        self.numerical = [c.name for c in numerical]
        self.categorical = [c.name for c in categorical]
        self.n_rows = n_rows
        self.settings = settings
        for column in numerical:
            column.index  # noqa: B018  planned with the profile, not by its first comparison

    @classmethod
    def fit(
        cls,
        reference: pd.DataFrame,
        numerical: list[str],
        categorical: list[str],
        settings: DriftSettings = DriftSettings(),
    ) -> ReferenceProfile:
        """Profile the reference frame's listed columns (other columns are ignored)."""
        columns = list(numerical) + list(categorical)
        if len(set(columns)) != len(columns) or not columns:
            raise ValueError("numerical and categorical must name distinct columns, at least one")
        _require(reference, columns, "reference")
        if len(reference) == 0:
            raise ValueError("reference has 0 rows")
        unknown = sorted(set(settings.key_features) - set(columns))
        if unknown:
            raise ValueError(f"key_features {unknown} are not profiled columns")
        keep_exact = settings.mode == "exact" or (
            settings.mode == "auto" and len(reference) <= settings.exact_max_rows
        )
        num = [
            st.NumericalColumn.fit(
                c, st.floats(reference, c), settings.psi_bins, settings.ks_grid, keep_exact
            )
            for c in numerical
        ]
        cat = [st.CategoricalColumn.fit(c, reference[c]) for c in categorical]
        return cls(num, cat, len(reference), settings)

    def compare(self, current: pd.DataFrame) -> DriftResult:
        """Test every profiled column of ``current`` against the reference; extra columns are
        ignored. Raises ValueError for an empty frame or a missing column."""
        if len(current) == 0:
            raise ValueError("current has 0 rows")
        _require(current, self.numerical + self.categorical, "current")
        s = self.settings
        exact = s.mode == "exact" or (
            s.mode == "auto" and max(self.n_rows, len(current)) <= s.exact_max_rows
        )
        workers = min(2, os.cpu_count() or 1) if len(current) >= _PARALLEL_MIN_ROWS else 1
        # Binned columns with an index are counted without a sort, split among the workers; the
        # rest are sorted (exact mode, which needs the sorted values; small batches; discrete
        # columns) or hashed (categoricals). Column views are taken here, in one thread; the
        # workers only read them.
        sorts = exact or len(current) < _INDEX_MIN_ROWS
        scanned = [] if sorts else [c for c in self._num if c.index is not None]
        sort = [c for c in self._num if sorts or c.index is None]
        groups: list[list[Any]] = [g for g in (scanned[w::workers] for w in range(workers)) if g]
        jobs = [
            partial(st.compare_many, g, [st.numbers(current, c.name) for c in g]) for g in groups
        ]
        jobs += [partial(_listed, c.compare, st.floats(current, c.name), exact) for c in sort]
        jobs += [partial(_listed, c.compare, current[c.name]) for c in self._cat]
        groups += [[c] for c in sort + self._cat]
        if workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:  # numpy releases the GIL
                results = list(pool.map(lambda job: job(), jobs))
        else:
            results = [job() for job in jobs]
        by_name = {c.name: row for g, out in zip(groups, results, strict=True)
                   for c, row in zip(g, out, strict=True)}  # fmt: skip
        rows = [by_name[name] for name in self.numerical + self.categorical]
        frame = pd.DataFrame(rows)
        frame.insert(0, "column", self.numerical + self.categorical)
        return self._verdict(frame, len(current))

    def _verdict(self, frame: pd.DataFrame, n_current: int) -> DriftResult:
        s = self.settings
        p_adj = st.adjust_pvalues(frame["p_value"].to_numpy(dtype=np.float64), s.correction)
        effect = frame["effect"].to_numpy(dtype=np.float64)
        psi = frame["psi"].to_numpy(dtype=np.float64)
        min_effect = np.where(frame["kind"] == "numerical", s.min_ks_effect, s.min_cramers_v)
        by_psi = psi > s.psi_threshold
        # PSI's expected value under no drift is (bins - 1)(1/n + 1/m): 0.18 for a 50-row batch.
        p_psi = st.adjust_pvalues(frame["psi_p_value"].to_numpy(dtype=np.float64), s.correction)
        if s.psi_significance:
            by_psi &= p_psi < s.alpha
        by_test = (p_adj < s.alpha) & (effect >= min_effect)
        missing = frame.pop("all_missing").to_numpy(dtype=bool)
        reasons = []
        for i in range(len(frame)):  # one iteration per column, not per data row
            parts = ["all values missing"] if missing[i] else []
            if by_psi[i]:
                parts.append(f"psi {psi[i]:.2f} > {s.psi_threshold:g}")
            if by_test[i]:
                letter = "D" if frame["test"].iat[i] == "ks" else "V"
                parts.append(f"{frame['test'].iat[i]} p={p_adj[i]:.2g}, "
                             f"{letter}={effect[i]:.2f} >= {min_effect[i]:g}")  # fmt: skip
            reasons.append("; ".join(parts))
        drifted = missing | by_psi | by_test
        frame.insert(frame.columns.get_loc("p_value") + 1, "p_adjusted", p_adj)
        frame["psi_p_value"] = p_psi  # after the same correction as the tests' p-values
        frame.insert(frame.columns.get_loc("psi") + 1, "drifted", drifted)
        frame.insert(frame.columns.get_loc("drifted") + 1, "reason", reasons)
        with np.errstate(invalid="ignore", divide="ignore"):  # how far past each threshold
            severity = np.fmax(psi / s.psi_threshold, np.where(by_test, effect / min_effect, 0))
        frame["severity"] = np.where(missing, np.inf, np.nan_to_num(severity))
        names = frame.loc[drifted, "column"].tolist()
        share = len(names) / len(frame)
        keys = [k for k in s.key_features if k in names]
        if keys:
            reason = f"key feature(s) {', '.join(keys)} drifted"
        else:
            cmp = ">=" if share >= s.drift_share else "<"
            reason = (
                f"{len(names)}/{len(frame)} columns drifted ({share:.2f} {cmp} {s.drift_share:g})"
            )
        return DriftResult(
            columns=frame,
            share_drifted=share,
            drifted=bool(share >= s.drift_share or keys),
            drifted_columns=names,
            max_psi=float(np.nanmax(psi)) if np.isfinite(psi).any() else float("nan"),
            n_reference=self.n_rows,
            n_current=n_current,
            reason=reason,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile into the folder ``path`` (created if needed) as ``profile.json`` and
        ``arrays.npz``: data only, no pickle. Each file is replaced atomically, and the JSON
        carries the npz's SHA-256 so that ``load`` refuses a mismatched pair."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for i, c in enumerate(self._num):
            for key in _ARRAYS:
                value = getattr(c, key)
                if value is not None:
                    arrays[f"num{i}_{key}"] = value
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        blob = buffer.getvalue()
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "arrays_sha256": hashlib.sha256(blob).hexdigest(),  # pairs the two files
            "n_rows": self.n_rows,
            "settings": asdict(self.settings),
            "numerical": [{"name": c.name, "n": c.n, "missing": c.missing} for c in self._num],
            "categorical": [
                {"name": c.name, "categories": c.categories.tolist(), "counts": c.counts.tolist()}
                for c in self._cat
            ],
        }
        write_bytes(blob, folder / "arrays.npz")
        write_json(meta, folder / "profile.json")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        """Read a profile written by ``save`` (``np.load(allow_pickle=False)``, JSON)."""
        folder = Path(path)
        meta = json.loads((folder / "profile.json").read_text("utf-8"))
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"{folder} does not hold a drift profile of version {VERSION}")
        settings = DriftSettings(**meta["settings"])
        blob = (folder / "arrays.npz").read_bytes()
        if hashlib.sha256(blob).hexdigest() != meta["arrays_sha256"]:
            raise ValueError(f"{folder}: arrays.npz does not belong to profile.json")
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
        num = []
        for i, c in enumerate(meta["numerical"]):
            found: dict[str, Any] = {k: arrays.get(f"num{i}_{k}") for k in _ARRAYS}
            num.append(st.NumericalColumn(c["name"], c["n"], c["missing"], **found))
        cat = [
            st.CategoricalColumn(
                c["name"],
                np.array(c["categories"], dtype=str),
                np.array(c["counts"], dtype=np.int64),
            )
            for c in meta["categorical"]
        ]
        return cls(num, cat, meta["n_rows"], settings)


def _listed(compare: Callable[..., dict[str, Any]], *args: Any) -> list[dict[str, Any]]:
    return [compare(*args)]


def _require(frame: pd.DataFrame, columns: list[str], which: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"{which} lacks profiled column(s) {absent}")
