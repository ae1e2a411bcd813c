"""One day's live evidence from labelled rows joined to their stored predictions: which rows
count for the current champion, how many a challenger shadow-scored, the concept detector's next
state, and the rows the guardrail compares the new and the previous champion on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrain_assets.lib.monitoring.concept import PageHinkley, PageHinkleyState, row_log_loss
from retrain_assets.lib.training.tasks import known_label_rows, prediction_of, row_losses


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
    previous: dict | None,
    today: pd.DataFrame,
    delta: float,
    threshold: float,
    task: str = "binary",
) -> PageHinkleyState:
    """Page-Hinkley on today's per-row loss, continuing the champion's previous state.

    The loss is the task's (``tasks.row_losses``): binary log loss, multiclass log loss over the
    rows whose label the champion knows (rows of unseen labels have no loss and are skipped),
    regression squared error. The test is standardised, so the loss's units do not matter.
    """
    state = PageHinkleyState.from_dict(previous) if previous else PageHinkleyState()
    if not len(today):
        return state
    if task == "binary":
        losses = row_log_loss(today["y"].to_numpy(), today["score"].to_numpy())
    else:
        losses = task_row_losses(today, task)
    return PageHinkley(delta=delta, threshold=threshold).update(state, losses)


def task_row_losses(joined: pd.DataFrame, task: str) -> np.ndarray:
    """The champion's per-row loss on joined rows (``y``, ``score``; multiclass ``proba`` and
    ``classes``), in row order; multiclass rows of labels it never saw are left out."""
    prediction, classes = prediction_of(joined, task)
    if task == "regression":
        return row_losses(task, joined["y"].to_numpy(dtype=float), prediction)
    y = joined["y"].astype(str).to_numpy()
    known = known_label_rows(task, y, classes)
    if not known.any():
        return np.empty(0)
    return row_losses(task, y[known], prediction[known], classes)


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
