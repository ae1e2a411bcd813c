"""The blocking data checks a training set must pass before anything is trained on it.

A broken set still gets a test AUC, and leakage or duplicated rows can make it look good; each
rule gives a ``RuleResult`` with the figure, the threshold and a line naming both, which the
Dagster check uses as its description. docs/training.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrain_assets.lib.training.fitting import DAY, ORDER, SPLIT, TARGET
from retrain_assets.lib.training.tasks import TASKS

__all__ = [
    "DEFAULT_SETTINGS",
    "ORDER",
    "RULES",
    "TASK_RULES",
    "GateSettings",
    "RuleResult",
    "check_training_set",
    "rules_for",
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
"""The rules of a binary (and a multiclass) set, in the order ``check_training_set`` gives them."""

TASK_RULES: dict[str, tuple[str, ...]] = {
    "binary": RULES,
    "multiclass": RULES,
    # A regression target has no classes: its values are checked in class_balance's place.
    "regression": tuple("target_values" if r == "class_balance" else r for r in RULES),
}
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


def _class_names(classes: Sequence[str]) -> str:
    quoted = ", ".join(repr(c) for c in classes)
    return f"class {quoted}" if len(classes) == 1 else f"classes {quoted}"


def _class_counts(
    rows: pd.DataFrame, train: pd.DataFrame, expected: Sequence[str] | None
) -> dict[str, int]:
    """Train rows per class (as text), for every class seen in the set or expected."""
    seen = {str(_plain(v)) for v in pd.unique(rows[TARGET].dropna())}
    classes = sorted(seen | {str(c) for c in expected or ()})
    counts = train[TARGET].dropna().map(lambda v: str(_plain(v))).value_counts()
    return {c: int(counts.get(c, 0)) for c in classes}


def _rare_classes(counts: dict[str, int], n: int, threshold: float) -> str:
    """The rarest class present in the train rows, and the others under the threshold."""
    present = sorted((c for c in counts if counts[c]), key=lambda c: counts[c])
    line = f"class {present[0]!r} is {counts[present[0]] / n:.2%} of {n} train rows"
    line += f" ({counts[present[0]]} rows)"
    rare = [c for c in present[1:] if counts[c] / n < threshold]
    if rare:
        others = ", ".join(f"{c!r} ({counts[c] / n:.2%})" for c in rare[:_EXAMPLES])
        more = ", ..." if len(rare) > _EXAMPLES else ""
        line += f"; also under {threshold:.2%}: {others}{more}"
    return line


def _multiclass_balance(
    rows: pd.DataFrame,
    train: pd.DataFrame,
    settings: GateSettings,
    expected: Sequence[str] | None,
) -> RuleResult:
    """Every class seen anywhere in the set, and every expected one (e.g. the champion's), held
    to ``min_class_share`` of the train rows; classes compared as text."""
    threshold = settings.min_class_share
    if train.empty:
        return RuleResult("class_balance", False, 0.0, threshold, "no train rows")
    counts = _class_counts(rows, train, expected)
    n = len(train)
    vanished = [c for c in counts if counts[c] == 0]
    present = [c for c in counts if counts[c] > 0]
    parts = []
    if vanished:
        verb = "has" if len(vanished) == 1 else "have"
        where = "vanished from the training window"
        parts.append(f"{_class_names(vanished)} {verb} 0 of {n} train rows: {where}")
    if len(present) < 2:
        only = f"only class {present[0]!r}" if present else "no class"
        parts.append(f"{only} in the train rows; a multiclass model needs at least 2")
    else:
        parts.append(_rare_classes(counts, n, threshold))
    share = min(counts.values()) / n if counts else 0.0
    passed = not vanished and len(present) >= 2 and share >= threshold
    return RuleResult("class_balance", passed, float(share), threshold, "; ".join(parts))


def _target_values(train: pd.DataFrame) -> RuleResult:
    """A regression target must vary and be finite over the train rows. The figure is the
    standard deviation of its finite values; it must exceed the threshold 0."""
    if train.empty:
        return RuleResult("target_values", False, 0.0, 0.0, "no train rows")
    y = pd.to_numeric(train[TARGET], errors="coerce").to_numpy(dtype=np.float64)
    finite = np.isfinite(y)
    std = float(np.std(y[finite])) if finite.any() else 0.0
    n = len(y)
    if not finite.all():
        bad = pd.unique(train[TARGET][~finite])
        detail = (
            f"target has {int((~finite).sum())} non-finite or missing value(s) over {n} "
            f"train rows, e.g. {_examples(bad)}"
        )
        return RuleResult("target_values", False, std, 0.0, detail)
    if std == 0:
        detail = f"target is constant ({_plain(y[0])}) over {n} train rows"
        return RuleResult("target_values", False, std, 0.0, detail)
    detail = f"target std {std:.4g} over {n} train rows (from {y.min():.4g} to {y.max():.4g})"
    return RuleResult("target_values", True, std, 0.0, detail)


def _target_rule(
    rows: pd.DataFrame,
    train: pd.DataFrame,
    settings: GateSettings,
    task: str,
    expected: Sequence[str] | None,
) -> RuleResult:
    """The task's rule on the target: class balance, or the values of a regression target."""
    if task == "regression":
        return _target_values(train)
    if task == "multiclass":
        return _multiclass_balance(rows, train, settings, expected)
    return _class_balance(rows, train, settings)


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
    task: str = "binary",
    expected_classes: Sequence[str] | None = None,
) -> list[RuleResult]:
    """Run the data gate on an assembled set; one ``RuleResult`` per rule, in the order of
    ``rules_for(task)``: ``RULES`` for binary and multiclass (``min_rows``, ``class_balance``,
    ``duplicate_ids``, ``null_rate``, ``constant_feature``, ``test_nonempty``, ``no_leakage``);
    for regression the same with ``target_values`` in place of ``class_balance``.

    * ``min_rows``: train rows >= ``min_rows``.
    * ``class_balance`` (binary): the rarest class's share of the train rows >= ``min_class_share``
      (a class missing from the train rows is share 0).
    * ``class_balance`` (multiclass): every class seen anywhere in the set and every one of
      ``expected_classes`` (e.g. the champion's) is >= ``min_class_share`` of the train rows, and
      the train rows hold at least 2 classes. A class with no train row has vanished from the
      training window: the detail names every such class. The figure is the smallest share.
    * ``target_values`` (regression): the train target is finite (no NaN, no infinity) and not
      constant. The figure is its standard deviation over the finite values (threshold 0).
    * ``duplicate_ids``: no id appears twice anywhere in train + test.
    * ``null_rate``: the worst feature's null share over the train rows <= ``max_null_rate``.
    * ``constant_feature``: every feature has >= 2 distinct non-null values in the train rows.
    * ``test_nonempty``: at least one test row.
    * ``no_leakage``: every test row strictly after every train row (``_order`` if present, else
      ``_day``), and no id both in train and in test. The figure counts the test rows that are not
      after train plus the shared ids.

    ``expected_classes`` is used by multiclass only. A missing id, feature, ``_day``, ``_split``
    or ``_target`` column, or an unknown ``task``, is a caller error (ValueError), not a failed
    rule.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; task must be one of {TASKS}")
    missing = [c for c in (id_column, *features, DAY, SPLIT, TARGET) if c not in rows]
    if missing:
        raise ValueError(f"training set lacks columns {missing}")
    train = rows.loc[rows[SPLIT] == "train"]
    test = rows.loc[rows[SPLIT] == "test"]
    return [
        _min_rows(train, settings),
        _target_rule(rows, train, settings, task, expected_classes),
        _duplicate_ids(rows.loc[rows[SPLIT].isin(["train", "test"])], id_column),
        _null_rate(train, features, settings),
        _constant_features(train, features),
        _test_nonempty(test),
        _no_leakage(train, test, id_column),
    ]


def rules_for(task: str = "binary") -> tuple[str, ...]:
    """The rule names ``check_training_set`` gives for ``task``, in its order."""
    if task not in TASK_RULES:
        raise ValueError(f"unknown task {task!r}; task must be one of {TASKS}")
    return TASK_RULES[task]


def summary(results: Iterable[RuleResult]) -> str:
    """The failed rules as ``rule: detail`` lines; empty when every rule passed."""
    return "\n".join(f"{r.rule}: {r.detail}" for r in results if not r.passed)
