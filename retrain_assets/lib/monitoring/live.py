"""One day's live evidence from labelled rows joined to their stored predictions: which rows
count for the current champion, how many a challenger shadow-scored, the concept detector's next
state, and the rows the guardrail compares the new and the previous champion on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrain_assets.lib.monitoring.concept import PageHinkley, PageHinkleyState, row_log_loss


def champion_rows(joined: pd.DataFrame, champion: str) -> tuple[pd.DataFrame, int]:
    """Rows the champion scored, and how many other versions scored (they say nothing of it)."""
    current = joined["champion_version"].astype(str) == champion
    return joined[current], int((~current).sum())


def shadow_rows_count(joined: pd.DataFrame) -> tuple[str | None, int]:
    """The newest challenger that shadow-scored labelled rows, and how many it scored."""
    if "challenger_version" not in joined:
        return None, 0
    versions = joined["challenger_version"].dropna().astype(str)
    if not len(versions):
        return None, 0
    challenger = max(versions, key=int)
    return challenger, int((versions == challenger).sum())


def next_detector_state(
    previous: dict | None, today: pd.DataFrame, delta: float, threshold: float
) -> PageHinkleyState:
    """Page-Hinkley on today's per-row log loss, continuing the champion's previous state."""
    state = PageHinkleyState.from_dict(previous) if previous else PageHinkleyState()
    if not len(today):
        return state
    losses = row_log_loss(today["y"].to_numpy(), today["score"].to_numpy())
    return PageHinkley(delta=delta, threshold=threshold).update(state, losses)


def guardrail_frames(joined_by_day: dict[str, pd.DataFrame]) -> list[pd.DataFrame]:
    """Per label day, the rows both the champion and the previous champion scored."""
    frames = [
        f[f["previous_champion_score"].notna()]
        for f in joined_by_day.values()
        if "previous_champion_score" in f
    ]
    return [f for f in frames if len(f)]


def pooled(frames: list[pd.DataFrame], column: str) -> np.ndarray:
    return pd.concat(frames, ignore_index=True)[column].to_numpy()
