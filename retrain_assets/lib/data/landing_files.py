"""Landing-file names and the errors a landing file can raise, without pandas.

The sensors and the landing store only need to know which files are landing files and which day
each stands for; keeping that free of pandas and numpy keeps the code location quick to load.
``contract`` re-exports all of it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class LandingFileError(ValueError):
    """A landing file cannot be read at all; the message names the file (and the column, when the
    problem sits in one). ``rule`` and ``reason`` are the parts a ``Violation`` is made of."""

    def __init__(
        self, path: Path | str, reason: str, *, rule: str = "unreadable", column: str | None = None
    ) -> None:
        where = f"column '{column}': " if column else ""
        super().__init__(f"{path}: {where}{reason}")
        self.path, self.reason, self.rule, self.column = str(path), reason, rule, column

    def violation(self) -> Violation:
        return Violation(self.rule, self.column, self.reason)


@dataclass(frozen=True)
class Violation:
    """One broken rule: which, on which column (if any), and the figure that broke it."""

    rule: str
    column: str | None
    detail: str

    def describe(self, source: Path | str) -> str:
        where = f"column '{self.column}'" if self.column else "file"
        return f"{source}: {where}: {self.rule}: {self.detail}"


def landing_day(path: Path) -> dt.date | None:
    """The data day a landing file stands for (its stem, YYYY-MM-DD), or None if it is not one."""
    if path.suffix.lower() not in READERS or not DAY_RE.match(path.stem):
        return None
    try:
        return dt.date.fromisoformat(path.stem)
    except ValueError:
        return None


def find_file(folder: Path, stem: str) -> Path | None:
    """The file ``<folder>/<stem>.{parquet,pq,csv}``; two formats for one stem is an error."""
    found = [folder / f"{stem}{ext}" for ext in READERS if (folder / f"{stem}{ext}").is_file()]
    if len(found) > 1:
        raise LandingFileError(folder, f"two files for {stem}: {[p.name for p in found]}")
    return found[0] if found else None
