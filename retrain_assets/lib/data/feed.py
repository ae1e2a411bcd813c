"""A demo feed: simulated day files held back in a staging folder and landed one data day at a
time, so a newcomer watches batches arrive, drift start, a retraining, the canary and a promotion
instead of a backlog processed at once. Files move by rename (atomic on one file system)."""

from __future__ import annotations

from pathlib import Path

KINDS = ("features", "labels")


def hold_back(landing: Path, staged: Path) -> int:
    """Move every day file of the landing folder into the staging folder; how many."""
    moved = 0
    for kind in KINDS:
        (staged / kind).mkdir(parents=True, exist_ok=True)
        for path in sorted((landing / kind).glob("*.*")):
            path.rename(staged / kind / path.name)
            moved += 1
    return moved


def pending_days(staged: Path) -> list[str]:
    """Data days that still have held-back files, oldest first."""
    return sorted({p.stem for kind in KINDS for p in (staged / kind).glob("*.*")})


def land_next(staged: Path, landing: Path) -> str | None:
    """Land every held-back file of the next pending day; the day, or None when all landed."""
    days = pending_days(staged)
    if not days:
        return None
    for kind in KINDS:
        (landing / kind).mkdir(parents=True, exist_ok=True)
        for path in (staged / kind).glob(f"{days[0]}.*"):
            path.rename(landing / kind / path.name)
    return days[0]
