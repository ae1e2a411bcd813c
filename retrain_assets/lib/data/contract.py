"""Reading landing files and holding them to the data contract.

Everything here is plain pandas so the rules can be tested without Dagster. A landing file is read
as data only (Parquet or CSV, never pickle); a problem is reported as a ``Violation`` that names the
rule, the column and the figure, so the run's error message and the check's metadata say what is
wrong and where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

# Re-exported: the pandas-free half of the contract (file names, days, errors) lives there.
from retrain_assets.lib.data.landing_files import DAY_RE as DAY_RE
from retrain_assets.lib.data.landing_files import READERS as READERS
from retrain_assets.lib.data.landing_files import LandingFileError as LandingFileError
from retrain_assets.lib.data.landing_files import Violation as Violation
from retrain_assets.lib.data.landing_files import find_file as find_file
from retrain_assets.lib.data.landing_files import landing_day as landing_day
from retrain_assets.lib.training.tasks import TASKS


@dataclass
class BatchReport:
    """A batch normalised to the contract's dtypes, and what was found on the way."""

    frame: pd.DataFrame
    violations: list[Violation] = field(default_factory=list)
    null_rates: dict[str, float] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def message(self, source: Path | str) -> str:
        return "\n".join(v.describe(source) for v in self.violations)


def _delimiter(path: Path) -> str:
    """The CSV delimiter: whichever of , ; tab | the header line uses most (comma if none)."""
    with path.open("rb") as fh:
        header = fh.readline().decode("utf-8-sig", errors="replace")
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _not_utf8(path: Path, sep: str) -> LandingFileError:
    """Where the first byte that is not UTF-8 sits: line, column (by the header) and raw field."""
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        reason = "not UTF-8 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        return LandingFileError(path, reason, rule="encoding")
    try:
        data.decode("utf-8-sig")
        return LandingFileError(path, "not UTF-8 text", rule="encoding")  # the parser disagrees
    except UnicodeDecodeError as exc:
        start, why = exc.start, exc.reason
    line_start = data.rfind(b"\n", 0, start) + 1
    line_no = data.count(b"\n", 0, start) + 1
    index = data.count(sep.encode(), line_start, start)  # fields before the bad byte (no quotes)
    line = data[line_start:].split(b"\n", 1)[0].rstrip(b"\r")
    field = line.split(sep.encode())[index]
    names = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", errors="replace").split(sep)
    column = names[index].strip().strip('"') if line_no > 1 and index < len(names) else None
    where = f"line {line_no}" if line_no > 1 else "line 1 (the header)"
    return LandingFileError(
        path,
        f"not UTF-8 text: {where}: {field!r} ({why} at byte {start}); "
        "save the file as UTF-8 (Excel: 'CSV UTF-8')",
        rule="encoding",
        column=column,
    )


def read_table(path: Path) -> pd.DataFrame:
    """Read one landing file by its extension; unreadable bytes raise an error naming the file.

    CSV: the delimiter is detected from the header (, ; tab |). A semicolon-separated file (what
    Excel writes in most European locales) may use a decimal comma: ``12,5`` is read as 12.5.
    """
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise LandingFileError(path, "unsupported extension (use .parquet or .csv)")
    empty = "the file is empty (no header, no rows)"
    if path.stat().st_size == 0:
        raise LandingFileError(path, empty, rule="empty")
    sep = ","
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        sep = _delimiter(path)
        decimal = "," if sep == ";" else "."
        return pd.read_csv(path, sep=sep, decimal=decimal, encoding="utf-8-sig")
    except FileNotFoundError:
        raise
    except UnicodeDecodeError:
        raise _not_utf8(path, sep) from None
    except pd.errors.EmptyDataError:
        raise LandingFileError(path, empty, rule="empty") from None
    except Exception as exc:
        raise LandingFileError(path, f"cannot read as {kind}: {exc}") from None


def _to_float(values: pd.Series) -> tuple[pd.Series, str | None]:
    """``values`` as float64 (numbers written as text included), or why they cannot be: the
    dtype, or how many values are not numbers with the first one and its row."""
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_numeric_dtype(values)
        or values.dtype == object
        or pd.api.types.is_string_dtype(values)
    ):
        return values, f"expected numbers, got dtype {values.dtype}"
    converted = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & converted.isna()
    if bad.any():
        example = values[bad].iloc[0]
        row = int(np.argmax(bad.to_numpy()))
        return values, f"{int(bad.sum())} non-numeric value(s), e.g. {example!r} at row {row}"
    return converted, None


def _numeric(frame: pd.DataFrame, col: str, out: list[Violation]) -> None:
    converted, problem = _to_float(frame[col])
    if problem:
        out.append(Violation("wrong_dtype", col, problem))
        return
    frame[col] = converted


def _categorical(frame: pd.DataFrame, col: str) -> None:
    values = frame[col]
    present = values.notna()
    if pd.api.types.is_float_dtype(values) and (values[present] % 1 == 0).all():
        # A CSV integer column with a gap is read as float: "3" must not become "3.0".
        values = values.astype("Int64")
    text = values.astype(str).astype(object)
    frame[col] = text.where(present, None)


def _timestamps(frame: pd.DataFrame, col: str, out: list[Violation]) -> None:
    values = frame[col]
    if pd.api.types.is_numeric_dtype(values):
        out.append(
            Violation(
                "wrong_dtype",
                col,
                "numeric timestamps are ambiguous (seconds? nanoseconds?): "
                "write ISO 8601 text or a datetime column",
            )
        )
        return
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values
    else:
        stamps = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    bad = values.notna() & stamps.isna()
    if bad.any():
        example = values[bad].iloc[0]
        out.append(
            Violation(
                "wrong_dtype", col, f"{int(bad.sum())} unparseable timestamp(s), e.g. {example!r}"
            )
        )
        return
    frame[col] = stamps.astype("datetime64[ns]")


def _ids(frame: pd.DataFrame, col: str, out: list[Violation]) -> None:
    ids = frame[col]
    if ids.isna().any():
        out.append(Violation("null_id", col, f"{int(ids.isna().sum())} row(s) without an id"))
    dup = ids[ids.duplicated(keep=False) & ids.notna()]
    if len(dup):
        examples = pd.unique(dup)[:5].tolist()
        out.append(
            Violation(
                "duplicate_ids",
                col,
                f"{dup.nunique()} id(s) occur more than once, e.g. {examples}",
            )
        )


def _missing(frame: pd.DataFrame, required: list[str], out: list[Violation]) -> list[str]:
    missing = [c for c in required if c not in frame.columns]
    hint = ""
    if len(frame.columns) == 1 and len(missing) > 1:
        hint = " (one column only: a CSV must be separated by , ; tab or |)"
    for col in missing:
        out.append(
            Violation(
                "missing_column",
                col,
                f"required by the contract; file has {list(frame.columns)}{hint}",
            )
        )
    return missing


TRUTHY = {"true", "yes", "y", "on", "1"}


def _as_numbers(values: pd.Series, positive: object) -> tuple[pd.Series, float] | None:
    """Labels and positive label as numbers when both are numbers (text included), else None."""
    if isinstance(positive, bool) or pd.api.types.is_bool_dtype(values):
        return None
    try:
        number = float(positive)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    parsed = pd.to_numeric(values, errors="coerce")
    if (parsed.isna() & values.notna()).any():
        return None
    return parsed.astype("float64"), number


def positive_mask(values: pd.Series, positive: object) -> pd.Series:
    """Which labels are the positive class, comparing like with like.

    1 matches 1.0 and "1" (also in one column of mixed types); "Yes" matches "yes"; an unquoted
    YAML ``yes`` (read as True) matches "yes".
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool) == (str(positive).strip().lower() in TRUTHY)
    if pd.api.types.is_numeric_dtype(values) and not isinstance(positive, str):
        return values.astype("float64") == float(positive)  # type: ignore[arg-type]
    numbers = _as_numbers(values, positive)
    if numbers is not None:
        return numbers[0] == numbers[1]
    text = values.astype(str).str.strip().str.lower()
    if isinstance(positive, bool):
        return text.isin(TRUTHY) if positive else ~text.isin(TRUTHY)
    return text == str(positive).strip().lower()


def _target(frame: pd.DataFrame, col: str, positive, out: list[Violation]) -> bool:
    """Normalise the target to int8 0/1; False (and a violation) when it cannot be."""
    values = frame[col]
    if values.isna().any():
        out.append(
            Violation("null_target", col, f"{int(values.isna().sum())} row(s) without a label")
        )
        return False
    is_positive = positive_mask(values, positive)
    numbers = _as_numbers(values, positive) if values.dtype == object else None
    # In a column of mixed types, 1, 1.0 and "1" are one value, not three.
    distinct = pd.unique((numbers[0] if numbers is not None else values).astype(str))
    if len(distinct) == 2 and not is_positive.any():
        out.append(
            Violation(
                "target_values",
                col,
                f"positive label {positive!r} is not among the values {sorted(distinct)}",
            )
        )
        return False
    if len(distinct) > 2:
        out.append(
            Violation(
                "target_values",
                col,
                f"a binary target has at most 2 values, found {sorted(distinct)[:10]}",
            )
        )
        return False
    frame[col] = is_positive.astype("int8")
    return True


def _all_missing(values: pd.Series, col: str, out: list[Violation]) -> bool:
    """A target column without a single label: one violation saying so (not a count)."""
    if len(values) and values.isna().all():
        detail = f"the target is all missing: none of the {len(values)} row(s) has a label"
        out.append(Violation("null_target", col, detail))
        return True
    return False


def _null_labels(values: pd.Series, col: str, out: list[Violation]) -> None:
    if values.isna().any():
        out.append(
            Violation("null_target", col, f"{int(values.isna().sum())} row(s) without a label")
        )


def _multiclass_target(frame: pd.DataFrame, col: str, out: list[Violation]) -> bool:
    """Normalise a multiclass target to text, as a categorical feature is ("3", not "3.0").
    One class in a batch is fine: a day may hold a single class."""
    if _all_missing(frame[col], col, out):
        return False
    _null_labels(frame[col], col, out)
    _categorical(frame, col)
    return True


def _booleans(values: pd.Series) -> pd.Series:
    """Which values are booleans (a boolean column, or True/False in a column of mixed types)."""
    if pd.api.types.is_bool_dtype(values):
        return values.notna()
    if values.dtype == object:
        return values.map(lambda v: isinstance(v, bool | np.bool_)).astype(bool)
    return pd.Series(False, index=values.index)


def _first(mask: pd.Series | np.ndarray, values: pd.Series, what: str) -> str:
    """``N <what>(s), e.g. <first> at row <i>`` for the rows of ``mask``."""
    flags = np.asarray(mask, dtype=bool)
    row = int(np.argmax(flags))
    value = values.iloc[row]
    value = value.item() if isinstance(value, np.generic) else value  # True, not np.True_
    return f"{int(flags.sum())} {what}(s), e.g. {value!r} at row {row}"


def _regression_target(frame: pd.DataFrame, col: str, out: list[Violation]) -> bool:
    """Normalise a regression target to float64; False (and a violation) when it cannot be."""
    values = frame[col]
    if _all_missing(values, col, out):
        return False
    booleans = _booleans(values)
    if booleans.any():
        detail = f"{_first(booleans, values, 'boolean value')}: a regression target must be numbers"
        out.append(Violation("wrong_dtype", col, detail))
        return False
    converted, problem = _to_float(values)
    if problem:
        out.append(Violation("wrong_dtype", col, f"{problem}: a regression target must be numbers"))
        return False
    _null_labels(converted, col, out)
    infinite = np.isinf(converted.to_numpy())
    if infinite.any():
        detail = (
            f"{_first(infinite, converted, 'infinite value')}: a regression target must be finite"
        )
        out.append(Violation("target_values", col, detail))
    frame[col] = converted
    return True


def _task_target(
    frame: pd.DataFrame, col: str, task: str, positive: object, out: list[Violation]
) -> bool:
    """Normalise the target as the task wants it: int8 0/1, text classes or float64."""
    if task == "multiclass":
        return _multiclass_target(frame, col, out)
    if task == "regression":
        return _regression_target(frame, col, out)
    return _target(frame, col, positive, out)


def _conflicting_labels(
    frame: pd.DataFrame, id_col: str, target: str, out: list[Violation]
) -> None:
    """An id with two different labels in one file (0 and 1, two classes, two values): which is
    true cannot be decided here."""
    pairs = frame[[id_col, target]].dropna(subset=[id_col])
    labels_per_id = pairs.groupby(id_col, sort=False)[target].nunique()
    conflicting = labels_per_id[labels_per_id > 1]
    if len(conflicting):
        out.append(
            Violation(
                "conflicting_labels",
                id_col,
                f"{len(conflicting)} id(s) have different '{target}' values in this file, "
                f"e.g. {conflicting.index[:5].tolist()}: keep one row per id (to correct an "
                "earlier day's label, put the new label in a later labels file)",
            )
        )


def check_frame(
    frame: pd.DataFrame,
    *,
    kind: str,
    id_column: str,
    numerical: list[str],
    categorical: list[str],
    target_column: str | None = None,
    positive_label: object = 1,
    timestamp_column: str | None = None,
    max_null_rate: float = 1.0,
    task: str = "binary",
) -> BatchReport:
    """Hold one frame to the contract and normalise its dtypes.

    ``kind`` is ``features`` (id, [timestamp], features), ``labels`` (id, target) or ``reference``
    (id, [timestamp], features, target). Extra columns are dropped and listed, never an error.
    The target is normalised per ``task``: ``binary`` to int8 0/1 (``positive_label`` becomes 1),
    ``multiclass`` to text like a categorical feature, ``regression`` to finite float64. A missing
    label is ``null_target``; two labels for one id in the file are ``conflicting_labels``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; task must be one of {TASKS}")
    frame = frame.copy()
    out: list[Violation] = []
    features = [*numerical, *categorical] if kind != "labels" else []
    required = [id_column, *features]
    if timestamp_column and kind != "labels":
        required.append(timestamp_column)
    if target_column and kind != "features":
        required.append(target_column)
    missing = _missing(frame, required, out)
    if len(frame) == 0:
        out.append(Violation("empty", None, "the file has no rows"))
    present = [c for c in required if c not in missing]
    ignored = [c for c in frame.columns if c not in required]
    frame = frame[present]
    if id_column in present:
        _ids(frame, id_column, out)
    for col in numerical:
        if col in present:
            _numeric(frame, col, out)
    for col in categorical:
        if col in present:
            _categorical(frame, col)
    if timestamp_column and timestamp_column in present:
        _timestamps(frame, timestamp_column, out)
    if target_column and target_column in present:
        normalised = _task_target(frame, target_column, task, positive_label, out)
        if normalised and id_column in present:
            _conflicting_labels(frame, id_column, target_column, out)
    null_rates = {
        c: float(frame[c].isna().mean()) if len(frame) else 0.0 for c in features if c in present
    }
    for col, rate in null_rates.items():
        if rate > max_null_rate:
            out.append(
                Violation("null_rate", col, f"{rate:.1%} missing > allowed {max_null_rate:.1%}")
            )
    return BatchReport(frame.reset_index(drop=True), out, null_rates, ignored)


# --- notes on a batch that holds to the contract ------------------------------------------------


def unseen_categories(
    frame: pd.DataFrame, known: dict[str, list[str]], examples: int = 5
) -> dict[str, tuple[int, list[str]]]:
    """Per categorical column in ``known``: rows whose (non-missing) value is none of the known
    categories, and a few such values. Values are compared as text, as ``check_frame`` leaves them.
    Columns without unseen values are left out."""
    found: dict[str, tuple[int, list[str]]] = {}
    for col, categories in known.items():
        if col not in frame.columns:
            continue
        values = frame[col]
        text = values.astype(str)
        unseen = values.notna() & ~text.isin({str(c) for c in categories})
        if unseen.any():
            found[col] = (int(unseen.sum()), pd.unique(text[unseen])[:examples].tolist())
    return found


def unknown_ids(ids: pd.Series, known: pd.Series, examples: int = 5) -> tuple[int, list]:
    """How many of ``ids`` are not among ``known`` (e.g. labels whose row was never landed), and a
    few of them."""
    unknown = ids[ids.notna() & ~ids.isin(known)]
    return len(unknown), pd.unique(unknown)[:examples].tolist()


def relabelled(
    labels: pd.DataFrame, earlier: pd.DataFrame, id_column: str, target_column: str
) -> pd.DataFrame:
    """Ids of ``labels`` that an earlier labels file labelled differently.

    ``earlier`` holds the earlier files' rows, oldest first, with a ``day`` column; the newest
    earlier label of an id is the one compared. Returns id, ``day`` (of that earlier label),
    ``before`` and ``after``, in the order of ``labels``. The newer label supersedes the earlier
    one downstream (training keeps the last label of an id), so this is a note, not an error.
    """
    columns = [id_column, "day", "before", "after"]
    if not len(labels) or not len(earlier):
        return pd.DataFrame(columns=columns)
    last = earlier.drop_duplicates(id_column, keep="last")[[id_column, "day", target_column]]
    joined = labels[[id_column, target_column]].merge(
        last.rename(columns={target_column: "before"}), on=id_column, how="inner", sort=False
    )
    joined = joined.rename(columns={target_column: "after"})
    return joined.loc[joined["before"] != joined["after"], columns].reset_index(drop=True)
