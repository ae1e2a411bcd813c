"""The blocking data checks a training set must pass before anything is trained on it.

A broken set still gets a test AUC, and leakage or duplicated rows can make it look good; each
rule gives a ``RuleResult`` with the figure, the threshold and a line naming both, which the
Dagster check uses as its description. docs/training.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from retrain_assets.lib.training.fitting import DAY, ORDER, SPLIT, TARGET

__all__ = [
    "DEFAULT_SETTINGS",
    "ORDER",
    "RULES",
    "GateSettings",
    "RuleResult",
    "check_training_set",
    "summary",
]

RULES = (
    "min_rows",
    "class_balance",
    "duplicate_ids",
    "null_rate",
    "constant_feature",
    "test_nonempty",
    "no_leakage",
)
_EXAMPLES = 5  # ids / features named in a detail line


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the data gate. Duplicate ids, constant features, an empty test split and
    leakage are never allowed, so they have no setting."""

    min_rows: int = 500
    min_class_share: float = 0.02  # each class, as a share of the TRAIN rows
    max_null_rate: float = 0.2  # per feature, over the train rows


DEFAULT_SETTINGS = GateSettings()


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome: the figure measured, the threshold it was held to, and a line that
    names the figure (e.g. ``3 duplicate ids, e.g. [12, 40]``)."""

    rule: str
    passed: bool
    figure: float | int | str
    threshold: float | int | str
    detail: str


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, so details print ``12``, not ``np.int64(12)``."""
    return value.item() if hasattr(value, "item") else value


def _examples(values: Iterable[Any]) -> list[Any]:
    return [_plain(v) for v in list(values)[:_EXAMPLES]]


def _min_rows(train: pd.DataFrame, settings: GateSettings) -> RuleResult:
    n = len(train)
    return RuleResult(
        "min_rows",
        n >= settings.min_rows,
        n,
        settings.min_rows,
        f"{n} train rows (minimum {settings.min_rows})",
    )


def _classes(rows: pd.DataFrame) -> list[Any]:
    """The classes of the target: those seen anywhere in the set, and both of 0/1 for a 0/1 (or
    boolean) target, so a class absent from the whole set still counts as share 0."""
    seen = [_plain(v) for v in pd.unique(rows[TARGET].dropna())]
    if all(v in (0, 1) for v in seen):
        return [0, 1]
    return sorted(seen, key=str)


def _class_balance(rows: pd.DataFrame, train: pd.DataFrame, settings: GateSettings) -> RuleResult:
    threshold = settings.min_class_share
    if train.empty:
        return RuleResult("class_balance", False, 0.0, threshold, "no train rows")
    classes = _classes(rows)
    counts = {_plain(k): int(v) for k, v in train[TARGET].value_counts().items()}
    shares = {c: counts.get(c, 0) / len(train) for c in classes}
    if len(classes) < 2:
        only = classes[0] if classes else None
        detail = f"only class {only!r} in the set; the other class is missing (share 0)"
        return RuleResult("class_balance", False, 0.0, threshold, detail)
    rarest = min(shares, key=lambda c: shares[c])
    share = shares[rarest]
    n = counts.get(rarest, 0)
    detail = f"class {rarest!r} is {share:.2%} of {len(train)} train rows ({n} rows)"
    return RuleResult("class_balance", share >= threshold, float(share), threshold, detail)


def _duplicate_ids(rows: pd.DataFrame, id_column: str) -> RuleResult:
    ids = rows[id_column].dropna()
    duplicated = pd.unique(ids[ids.duplicated(keep=False)])
    n = len(duplicated)
    if n:
        detail = f"{n} duplicate ids, e.g. {_examples(duplicated)}"
    else:
        detail = f"0 duplicate ids among {len(ids)} rows"
    return RuleResult("duplicate_ids", n == 0, n, 0, detail)


def _null_rate(train: pd.DataFrame, features: Sequence[str], settings: GateSettings) -> RuleResult:
    threshold = settings.max_null_rate
    if train.empty or not features:
        what = "no train rows" if train.empty else "no features"
        return RuleResult("null_rate", True, 0.0, threshold, what)
    rates = train[list(features)].isna().mean()
    worst = str(rates.idxmax())
    rate = float(rates[worst])
    detail = f"feature {worst!r} is {rate:.1%} null over {len(train)} train rows"
    return RuleResult("null_rate", rate <= threshold, rate, threshold, detail)


def _constant_features(train: pd.DataFrame, features: Sequence[str]) -> RuleResult:
    constant: list[tuple[str, str]] = []  # (feature, its only value or "all null")
    for feature in features:
        values = pd.unique(train[feature].dropna())
        if len(values) <= 1:
            only = repr(_plain(values[0])) if len(values) else "all null"
            constant.append((feature, only))
    n = len(constant)
    if n == 0:
        detail = f"no constant feature among {len(features)}"
    elif n == 1:
        detail = f"feature {constant[0][0]!r} is constant ({constant[0][1]})"
    else:
        named = ", ".join(f"{f!r} ({only})" for f, only in constant[:_EXAMPLES])
        detail = f"{n} constant features: {named}" + (", ..." if n > _EXAMPLES else "")
    return RuleResult("constant_feature", n == 0, n, 0, detail)


def _test_nonempty(test: pd.DataFrame) -> RuleResult:
    n = len(test)
    return RuleResult("test_nonempty", n >= 1, n, 1, f"{n} test rows")


def _time_order(train: pd.DataFrame, test: pd.DataFrame) -> tuple[int, str]:
    """(test rows not strictly after the newest train row, a line saying where each side starts
    or ends). Uses ``_order`` when present (many reference rows share one ``_day``, so only the
    order tells rows of one day apart), else requires test days strictly after train days."""
    if ORDER in train:
        train_end = int(train[ORDER].max())
        test_start = int(test[ORDER].min())
        late = int((test[ORDER] <= train_end).sum())
        end_day = train.loc[train[ORDER].idxmax(), DAY]
        start_day = test.loc[test[ORDER].idxmin(), DAY]
        line = (
            f"test starts at {ORDER} {test_start} ({start_day}), "
            f"train ends at {ORDER} {train_end} ({end_day})"
        )
        return late, line
    train_end_day = str(train[DAY].astype(str).max())
    test_days = test[DAY].astype(str)
    late = int((test_days <= train_end_day).sum())
    return late, f"test starts {test_days.min()}, train ends {train_end_day}"


def _no_leakage(train: pd.DataFrame, test: pd.DataFrame, id_column: str) -> RuleResult:
    if train.empty or test.empty:
        return RuleResult("no_leakage", True, 0, 0, "nothing to compare: a split is empty")
    late, line = _time_order(train, test)
    shared = pd.unique(test[id_column][test[id_column].isin(train[id_column].dropna())])
    parts = [line + (f" ({late} test rows not after train)" if late else "")]
    if len(shared):
        parts.append(f"{len(shared)} ids in both train and test, e.g. {_examples(shared)}")
    figure = late + len(shared)
    return RuleResult("no_leakage", figure == 0, figure, 0, "; ".join(parts))


def check_training_set(
    rows: pd.DataFrame,
    *,
    id_column: str,
    features: list[str],
    settings: GateSettings = DEFAULT_SETTINGS,
) -> list[RuleResult]:
    """Run the data gate on an assembled set; one ``RuleResult`` per rule, in ``RULES`` order.

    * ``min_rows``: train rows >= ``min_rows``.
    * ``class_balance``: the rarest class's share of the train rows >= ``min_class_share`` (a
      class missing from the train rows is share 0).
    * ``duplicate_ids``: no id appears twice anywhere in train + test.
    * ``null_rate``: the worst feature's null share over the train rows <= ``max_null_rate``.
    * ``constant_feature``: every feature has >= 2 distinct non-null values in the train rows.
    * ``test_nonempty``: at least one test row.
    * ``no_leakage``: every test row strictly after every train row (``_order`` if present, else
      ``_day``), and no id both in train and in test. The figure counts the test rows that are not
      after train plus the shared ids.

    A missing id, feature, ``_day``, ``_split`` or ``_target`` column is a caller error
    (ValueError), not a failed rule.
    """
    missing = [c for c in (id_column, *features, DAY, SPLIT, TARGET) if c not in rows]
    if missing:
        raise ValueError(f"training set lacks columns {missing}")
    train = rows.loc[rows[SPLIT] == "train"]
    test = rows.loc[rows[SPLIT] == "test"]
    return [
        _min_rows(train, settings),
        _class_balance(rows, train, settings),
        _duplicate_ids(rows.loc[rows[SPLIT].isin(["train", "test"])], id_column),
        _null_rate(train, features, settings),
        _constant_features(train, features),
        _test_nonempty(test),
        _no_leakage(train, test, id_column),
    ]


def summary(results: Iterable[RuleResult]) -> str:
    """The failed rules as ``rule: detail`` lines; empty when every rule passed."""
    return "\n".join(f"{r.rule}: {r.detail}" for r in results if not r.passed)
