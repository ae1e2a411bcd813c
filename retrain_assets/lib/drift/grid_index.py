"""Counting a column against the reference grid without sorting it.

The binned KS and the PSI need, for each search point p of a column's grid (``interleave``),
how many current values are <= p: ``searchsorted(sort(x), points, side="right")``. A
``GridIndex`` gets the same numbers from one pass of integer arithmetic: the bit pattern of a
positive float64 read as an int64 is monotone in its value, so ``(x - offset)``'s bits shifted
right map every value to one of ~2¹⁶ ordered cells, uniform within each power of two. A
``bincount`` of the cells counts the values between search points; only the values that share a
cell with a search point (a small share on continuous data) are sorted, to place them exactly.
The results are identical to the sort's (NaN and ±inf included). Design: docs/drift.md; figures:
benchmarks/RESULTS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELLS_LOG2 = 16  # cells per power of two of the linear map; 2¹⁶ int64 counts = 512 KiB
CHUNK_ROWS = 1 << 16  # rows per step of a scan across strided columns (x4 along one)
MAX_SORTED_SHARE = 0.3  # above this estimated share of values to sort, sorting all is as fast
_TRIMS = np.array([0.0, 0.001, 0.003, 0.01, 0.03, 0.1])  # reference tails left to the end cells
_LOG_OCTAVES = 12  # the log-like map: powers of two between the offset and the range's top


@dataclass(frozen=True)
class GridIndex:
    """Value -> cell map of one column (``offset``, ``shift``, ``first``, ``cells``) and which
    cells hold a search point (``special``; the end cells, which also take NaN, ±inf and the
    values outside the range, always do)."""

    offset: float
    shift: int
    first: int
    cells: int
    points: np.ndarray  # the sorted search points
    point_cell: np.ndarray  # cell of each search point
    special: np.ndarray  # bool per cell

    @classmethod
    def plan(
        cls, grid: np.ndarray, le: np.ndarray, lt: np.ndarray, n: int, points: np.ndarray
    ) -> GridIndex | None:
        """The map that leaves the fewest reference values in special cells, estimated from the
        grid's counts; None when no map leaves fewer than ``MAX_SORTED_SHARE`` (discrete data:
        the mass sits on the grid points themselves), so the column is sorted instead."""
        best = _best_map(grid, le, lt, n)
        if best is None or best[0] > MAX_SORTED_SHARE:
            return None
        offset, shift, first, cells = best[1:]
        point_cell = _cells_of(points, offset, shift, first, cells, np.empty(points.size, np.int64))
        special = np.zeros(cells, dtype=bool)
        special[point_cell] = True
        special[[0, -1]] = True
        return cls(offset, shift, first, cells, points, point_cell, special)

    def cells_of(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Cell of each value, written into ``out`` (int64, x.size): monotone non-decreasing in
        x; values below the range, -inf, ±0.0 and NaN with its sign bit set land in cell 0,
        values above it, +inf and other NaN in the last."""
        return _cells_of(x, self.offset, self.shift, self.first, self.cells, out)


def _cells_of(
    x: np.ndarray, offset: float, shift: int, first: int, cells: int, out: np.ndarray
) -> np.ndarray:
    # in float64 whatever x's dtype (float32 - offset would round in float32)
    np.subtract(x, offset, out=out.view(np.float64), dtype=np.float64)
    np.right_shift(out, shift, out=out)  # arithmetic: negative floats stay negative
    np.subtract(out, first, out=out)
    return np.clip(out, 0, cells - 1, out=out)


class Tally:
    """What a scan has seen of one column: values per cell, and the values in special cells."""

    def __init__(self, index: GridIndex) -> None:
        self.index = index
        self.per_cell = np.zeros(index.cells, dtype=np.int64)
        self.kept: list[np.ndarray] = []  # the values in special cells
        self.size = 0

    def add(self, chunk: np.ndarray, scratch: np.ndarray) -> None:
        cells = self.index.cells_of(chunk, scratch[: chunk.size])
        self.per_cell += np.bincount(cells, minlength=self.index.cells)
        self.kept.append(chunk[self.index.special[cells]])
        self.size += chunk.size

    def found(self) -> tuple[np.ndarray, int]:
        """``searchsorted(sort(non-NaN x), points, side="right")`` and the count of non-NaN x."""
        kept = np.concatenate(self.kept).astype(np.float64, copy=False)
        kept.sort()  # NaN last
        index = self.index
        below = np.cumsum(np.where(index.special, 0, self.per_cell))  # points' cells are special
        found = below[index.point_cell] + np.searchsorted(kept, index.points, side="right")
        nan = kept.size - int(np.searchsorted(kept, np.inf, side="right"))
        return found, self.size - nan


def scan(columns: list[np.ndarray], indexes: list[GridIndex]) -> list[Tally]:
    """Tally every column. Contiguous columns go one after the other; columns strided through
    one 2-D block (a DataFrame built from a 2-D array) a chunk of rows at a time across all of
    them, so that the block is read once, not once per column."""
    tallies = [Tally(index) for index in indexes]
    rows = len(columns[0]) if columns else 0
    if all(x.strides[0] == x.itemsize for x in columns):
        step = CHUNK_ROWS * 4  # fewer, larger bincounts
        order = [
            (t, x, a) for t, x in zip(tallies, columns, strict=True) for a in range(0, rows, step)
        ]
    else:
        step = CHUNK_ROWS
        order = [
            (t, x, a) for a in range(0, rows, step) for t, x in zip(tallies, columns, strict=True)
        ]
    scratch = np.empty(min(step, rows), dtype=np.int64)
    for tally, x, a in order:
        tally.add(x[a : a + step], scratch)
    return tallies


def _best_map(
    grid: np.ndarray, le: np.ndarray, lt: np.ndarray, n: int
) -> tuple[float, float, int, int, int] | None:
    """(estimated share of values in special cells, offset, shift, first, cells) of the best
    candidate map: a linear one over the reference range less each pair of tails in ``_TRIMS``,
    or a log-like one for right-skewed columns; None if the grid has < 2 finite values.

    A special cell holds about (its width) x (the reference density at its point), plus any
    reference mass on the point itself; the end cells hold the tails left out of the range."""
    finite = np.flatnonzero(np.isfinite(grid))
    if finite.size < 2 or grid[finite[0]] == grid[finite[-1]]:
        return None
    f0, f1 = finite[0], finite[-1]
    gaps = np.diff(grid[f0 : f1 + 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_density = np.where(gaps > 0, (lt[f0 + 1 : f1 + 1] - le[f0:f1]) / n / gaps, 0.0)
    density = np.zeros(grid.size)  # at each point: the mean of its two gaps'
    density[f0:f1] += gap_density / 2
    density[f0 + 1 : f1 + 1] += gap_density / 2
    atoms = np.append(0.0, np.cumsum((le - lt) / n))  # mass on the grid values themselves
    mass = np.append(0.0, np.cumsum(density))
    lows = np.unique(np.clip(np.searchsorted(le, _TRIMS * n), f0, f1))
    highs = np.unique(np.clip(np.searchsorted(le, (1 - _TRIMS) * n), f0, f1))
    a, b = (g.ravel() for g in np.meshgrid(lows, highs))
    keep = grid[b] > grid[a]
    a, b = a[keep], b[keep]
    tails = le[a] / n + (n - lt[b]) / n + atoms[b] - atoms[a + 1]  # ends of the range; atoms
    span = 2.0 ** np.ceil(np.log2(grid[b] - grid[a]))  # the linear map's power of two
    shares = tails + span * 2.0**-CELLS_LOG2 * (mass[b] - mass[a + 1])
    options = [(float(s), int(i), int(j), 0) for s, i, j in zip(shares, a, b, strict=True)]
    for j in highs[grid[highs] > grid[f0]][::2]:  # log-like from the minimum; every other top
        found = _candidate(grid, f0, j, _LOG_OCTAVES)
        if found is not None:
            width = _cell_width(grid[f0 + 1 : j], found[0], found[1])
            share = le[f0] / n + (n - lt[j]) / n + atoms[j] - atoms[f0 + 1]
            options.append((share + float(width @ density[f0 + 1 : j]), f0, int(j), _LOG_OCTAVES))
    for share, i, j, octaves in sorted(options):
        found = _candidate(grid, i, j, octaves)
        if found is not None:
            return (share, *found)
    return None


def _candidate(
    grid: np.ndarray, a: int, b: int, octaves: int
) -> tuple[float, int, int, int] | None:
    """(offset, shift, first, cells) mapping [grid[a], grid[b]] onto about 2**CELLS_LOG2 cells:
    linear (the range inside one power of two) or, with ``octaves``, log-like (the range spans
    that many powers of two above the offset)."""
    lo, hi = float(grid[a]), float(grid[b])
    width = hi - lo
    if not (width > 0 and np.isfinite(width)):
        return None
    if octaves:
        offset = lo - width * 2.0**-octaves
        log2_cells = CELLS_LOG2 - int(np.ceil(np.log2(octaves + 1)))
    else:
        offset, log2_cells = lo - 2.0 ** np.ceil(np.log2(width)), CELLS_LOG2
    if not offset < lo:  # lo too large for the range's width to show in its bits
        return None
    shift = 52 - log2_cells
    first = int(np.array(lo - offset).view(np.int64)) >> shift
    cells = (int(np.array(hi - offset).view(np.int64)) >> shift) - first + 1
    return (offset, shift, first, cells) if cells <= 2 ** (CELLS_LOG2 + 1) else None


def _cell_width(x: np.ndarray, offset: float, shift: int) -> np.ndarray:
    """Width of the cell holding each x > offset: a 2**-(52 - shift) share of its power of two."""
    _, exponent = np.frexp(x - offset)
    return np.ldexp(1.0, exponent - 1 - (52 - shift))
