"""Notes on a batch that holds to the contract but deserves a look: categories the champion never
saw, labels for ids no feature batch holds, labels that correct an earlier file's. Listed in the
materialisation's metadata and the passed check's description; never a failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from retrain_assets.config import RetrainConfig
from retrain_assets.lib.dates import shift_day
from retrain_assets.monitoring.paths import PROFILE_DIR
from retrain_assets.resources.landing import LandingStore

if TYPE_CHECKING:
    import pandas as pd


def known_categories(store: LandingStore) -> dict[str, list[str]]:
    """The categories of the current reference profile (the champion's training set), if any."""
    path = Path(store.workdir).joinpath(*PROFILE_DIR) / "profile.json"
    if not path.is_file():
        return {}
    return {c["name"]: c["categories"] for c in json.loads(path.read_text())["categorical"]}


def feature_notes(store: LandingStore, frame: pd.DataFrame) -> tuple[list[str], dict]:
    from retrain_assets.lib.data.contract import unseen_categories

    found = unseen_categories(frame, known_categories(store))
    notes = [
        f"column '{col}': {n} row(s) with a category the champion never saw, e.g. {examples}: "
        "scored (the model treats it as unknown) and counted by the drift report"
        for col, (n, examples) in found.items()
    ]
    summary = "; ".join(f"{col}: {n} row(s), e.g. {ex}" for col, (n, ex) in found.items())
    return notes, ({"unseen_categories": summary} if found else {})


def _stored_column_frames(
    store: LandingStore, kind: str, days: list[str], columns: list[str]
) -> pd.DataFrame:
    import pandas as pd

    frames = [
        pd.read_parquet(store.batch_path(kind, d), columns=columns).assign(day=d) for d in days
    ]
    return pd.concat(frames or [pd.DataFrame(columns=[*columns, "day"])], ignore_index=True)


def label_notes(
    cfg: RetrainConfig, store: LandingStore, day: str, frame: pd.DataFrame
) -> tuple[list[str], dict]:
    """Labels for ids no feature batch holds, and ids an earlier labels file labelled otherwise,
    both within ``performance.max_label_delay_days`` (the window performance reports join in)."""
    from retrain_assets.lib.data.contract import relabelled, unknown_ids

    id_col, target = cfg.data.id_column, cfg.data.target_column
    notes: list[str] = []
    first = shift_day(day, -cfg.performance.max_label_delay_days)
    feature_days = [d for d in store.batch_days("features") if first <= d <= day]
    known = _stored_column_frames(store, "features", feature_days, [id_col])[id_col]
    n_unknown, examples = unknown_ids(frame[id_col], known)
    if n_unknown:
        notes.append(
            f"column '{id_col}': {n_unknown} label(s) for ids in no feature batch from {first} "
            f"to {day}, e.g. {examples}: stored, but no performance report can use them (they "
            "reach training only if a feature batch with these ids lands)"
        )
    # Same window (bounded reads per ingest); an older label corrected later still is superseded
    # in training, only this note does not see it.
    earlier_days = [d for d in store.batch_days("labels") if first <= d < day]
    earlier = _stored_column_frames(store, "labels", earlier_days, [id_col, target])
    changed = relabelled(frame, earlier, id_col, target)
    if len(changed):
        shown = ", ".join(
            f"{r[0]} ({r[1]}: {r[2]} -> {r[3]})" for r in changed.head(5).itertuples(index=False)
        )
        notes.append(
            f"column '{target}': {len(changed)} id(s) relabelled (an earlier labels file says "
            f"otherwise), e.g. {shown}: this file's label supersedes the earlier one"
        )
    extra = {"unknown_ids": n_unknown, "relabelled_ids": len(changed)}
    if cfg.task == "multiclass":
        unseen, note = unseen_classes(cfg, store, frame)
        notes += [note] if note else []
        extra["unseen_class_labels"] = unseen
    return notes, extra


def trained_classes(cfg: RetrainConfig, store: LandingStore) -> set[str]:
    """The classes a model could have learnt: those of the reference set and of the newest
    training set (empty before the reference landed)."""
    import pandas as pd

    target = cfg.data.target_column
    classes: set[str] = set()
    if store.reference_path().is_file():
        reference = pd.read_parquet(store.reference_path(), columns=[target])
        classes |= set(reference[target].astype(str))
    training = Path(store.workdir) / "training" / "training_set.parquet"
    if training.is_file():
        classes |= set(pd.read_parquet(training, columns=["_target"])["_target"].astype(str))
    return classes


def unseen_classes(
    cfg: RetrainConfig, store: LandingStore, frame: pd.DataFrame
) -> tuple[int, str | None]:
    """Labels of a class no training data held: accepted and stored (the next retraining learns
    the class), counted, and left out of live metrics until a model knows it."""
    known = trained_classes(cfg, store)
    labels = frame[cfg.data.target_column].astype(str)
    unseen = labels[~labels.isin(known)] if known else labels.iloc[:0]
    if not len(unseen):
        return 0, None
    examples = sorted(set(unseen))[:5]
    note = (
        f"column '{cfg.data.target_column}': {len(unseen)} label(s) of a class no training data "
        f"held, {examples}: stored (the next retraining learns it); the live metrics leave them "
        "out until a model knows the class"
    )
    return len(unseen), note
