"""Ingest: landing files, checked against the contract, stored normalised under the workdir.

Validation happens before anything is written: a batch that breaks the contract fails its run
with a message naming the file and the column, its blocking ``*_schema`` check records why, and no
normalised file (so nothing any model could learn from) is stored. The landing file stays as it is.

A batch that holds to the contract may still carry something worth a look: extra columns (dropped),
categories the champion never saw (scored, and counted by the drift report), labels for ids no
feature batch holds, labels that correct an earlier file's. Those are notes: listed in the
materialisation's metadata and in the passed check's description, never a failure.
"""

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets.assets.monitor import PROFILE_DIR
from retrain_assets.config import RetrainConfig
from retrain_assets.lib.data.landing_files import LandingFileError, Violation
from retrain_assets.resources.storage import LandingStore, write_parquet_atomic

if TYPE_CHECKING:  # pandas (and the contract, which needs it) is imported inside the steps
    import pandas as pd

    from retrain_assets.lib.data.contract import BatchReport

PREVIEW_ROWS = 5


def _violations_table(violations: list[Violation]) -> str:
    lines = ["| rule | column | detail |", "|---|---|---|"]
    lines += [f"| {v.rule} | {v.column or '-'} | {v.detail} |" for v in violations]
    return "\n".join(lines)


def _null_table(null_rates: dict[str, float]) -> str:
    lines = ["| column | null rate |", "|---|---|"]
    lines += [f"| {c} | {r:.2%} |" for c, r in null_rates.items()]
    return "\n".join(lines)


def _read_and_check(cfg: RetrainConfig, kind: str, path: Path) -> "BatchReport":
    import pandas as pd

    from retrain_assets.lib.data.contract import BatchReport, check_frame, read_table

    data = cfg.data
    try:
        raw = read_table(path)
    except LandingFileError as exc:
        return BatchReport(pd.DataFrame(), [exc.violation()])
    return check_frame(
        raw,
        kind=kind,
        id_column=data.id_column,
        numerical=data.numerical_features,
        categorical=data.categorical_features,
        target_column=data.target_column,
        positive_label=data.positive_label,
        timestamp_column=data.timestamp_column,
        max_null_rate=cfg.ingest.max_null_rate,
    )


def _known_categories(store: LandingStore) -> dict[str, list[str]]:
    """The categories of the current reference profile (the champion's training set), if any."""
    path = Path(store.workdir).joinpath(*PROFILE_DIR) / "profile.json"
    if not path.is_file():
        return {}
    return {c["name"]: c["categories"] for c in json.loads(path.read_text())["categorical"]}


def _feature_notes(store: LandingStore, frame: "pd.DataFrame") -> tuple[list[str], dict]:
    from retrain_assets.lib.data.contract import unseen_categories

    found = unseen_categories(frame, _known_categories(store))
    notes = [
        f"column '{col}': {n} row(s) with a category the champion never saw, e.g. {examples}: "
        "scored (the model treats it as unknown) and counted by the drift report"
        for col, (n, examples) in found.items()
    ]
    summary = "; ".join(f"{col}: {n} row(s), e.g. {ex}" for col, (n, ex) in found.items())
    return notes, ({"unseen_categories": summary} if found else {})


def _label_notes(
    cfg: RetrainConfig, store: LandingStore, day: str, frame: "pd.DataFrame"
) -> tuple[list[str], dict]:
    """Labels for ids no feature batch holds, and ids an earlier labels file labelled otherwise,
    both within ``performance.max_label_delay_days`` (the window performance reports join in)."""
    import pandas as pd

    from retrain_assets.lib.data.contract import relabelled, unknown_ids

    id_col, target = cfg.data.id_column, cfg.data.target_column
    notes: list[str] = []
    first = (
        dt.date.fromisoformat(day) - dt.timedelta(days=cfg.performance.max_label_delay_days)
    ).isoformat()
    feature_days = [d for d in store.batch_days("features") if first <= d <= day]
    known = pd.concat(
        [pd.read_parquet(store.batch_path("features", d), columns=[id_col]) for d in feature_days]
        or [pd.DataFrame({id_col: []})],
        ignore_index=True,
    )[id_col]
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
    earlier = pd.concat(
        [
            pd.read_parquet(store.batch_path("labels", d), columns=[id_col, target]).assign(day=d)
            for d in earlier_days
        ]
        or [pd.DataFrame(columns=[id_col, target, "day"])],
        ignore_index=True,
    )
    changed = relabelled(frame, earlier, id_col, target)
    if len(changed):
        shown = ", ".join(
            f"{r[0]} ({r[1]}: {r[2]} -> {r[3]})" for r in changed.head(5).itertuples(index=False)
        )
        notes.append(
            f"column '{target}': {len(changed)} id(s) relabelled (an earlier labels file says "
            f"otherwise), e.g. {shown}: this file's label supersedes the earlier one"
        )
    return notes, {"unknown_ids": n_unknown, "relabelled_ids": len(changed)}


def ingest_file(
    cfg: RetrainConfig,
    store: LandingStore,
    kind: str,
    path: Path | None,
    out: Path,
    check: str,
    day: str | None = None,
    log: dg.DagsterLogManager | None = None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Check one landing file and, only if it holds to the contract, store it normalised."""
    if path is None:
        raise dg.Failure(f"no {kind} landing file for this partition under {store.landing_dir}")
    report = _read_and_check(cfg, kind, path)
    if not report.ok:
        reason = report.message(path)
        yield dg.AssetCheckResult(
            check_name=check,
            passed=False,
            description=reason,
            metadata={
                "file": dg.MetadataValue.path(str(path)),
                "violations": dg.MetadataValue.md(_violations_table(report.violations)),
                "failed_rules": ", ".join(sorted({v.rule for v in report.violations})),
            },
        )
        raise dg.Failure(description=f"{kind} batch rejected:\n{reason}")
    frame = report.frame
    notes: list[str] = []
    extra: dict[str, dg.RawMetadataValue] = {}
    if report.ignored_columns:
        notes.append(
            f"dropped {len(report.ignored_columns)} column(s) the contract does not use: "
            f"{report.ignored_columns}"
        )
    if kind == "features":
        found, extra = _feature_notes(store, frame)
        notes += found
    elif kind == "labels" and day is not None:
        found, extra = _label_notes(cfg, store, day, frame)
        notes += found
    write_parquet_atomic(frame, out)
    metadata: dict[str, dg.RawMetadataValue] = {
        "landing_file": dg.MetadataValue.path(str(path)),
        "stored_as": dg.MetadataValue.path(str(out)),
        "dagster/row_count": len(frame),
        "preview": dg.MetadataValue.md(frame.head(PREVIEW_ROWS).to_markdown(index=False)),
    }
    if report.null_rates:
        metadata["null_rates"] = dg.MetadataValue.md(_null_table(report.null_rates))
        metadata["max_null_rate"] = float(max(report.null_rates.values()))
    if cfg.data.target_column in frame and kind != "features":
        metadata["positive_rate"] = float(frame[cfg.data.target_column].mean())
    if report.ignored_columns:
        metadata["ignored_columns"] = ", ".join(report.ignored_columns)
    metadata.update(extra)
    if notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in notes))
        if log is not None:
            for note in notes:
                log.warning(f"{path}: {note}")
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=check,
        passed=True,
        description=("holds to the contract; " + "; ".join(notes)) if notes else None,
        metadata={
            "rows": len(frame),
            "max_null_rate_allowed": cfg.ingest.max_null_rate,
            "columns": len(frame.columns),
        },
    )


def build_ingest_assets(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """reference_dataset, feature_batch[day] and label_batch[day] for one config."""

    def schema_check(asset: str, what: str, partitioned: bool = True) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            f"{asset}_schema",
            asset=asset,
            blocking=True,
            partitions_def=daily if partitioned else None,
            description=f"The {what} holds to the data contract: columns, dtypes, unique ids, "
            f"null rate ≤ {cfg.ingest.max_null_rate:.0%}.",
        )

    @dg.asset(
        group_name="ingest",
        kinds={"parquet"},
        check_specs=[schema_check("reference_dataset", "reference set", partitioned=False)],
    )
    def reference_dataset(store: LandingStore) -> Iterator:
        """The labelled history the first model learns from (landing `reference.*`).

        Refreshed by landing_sensor when the reference file is new or changed."""
        yield from ingest_file(
            cfg,
            store,
            "reference",
            store.landing_file("reference"),
            store.reference_path(),
            "reference_dataset_schema",
        )

    @dg.asset(
        group_name="ingest",
        kinds={"parquet"},
        partitions_def=daily,
        check_specs=[schema_check("feature_batch", "day's production batch")],
    )
    def feature_batch(context: dg.AssetExecutionContext, store: LandingStore) -> Iterator:
        """One day's production batch (landing `features/<day>.*`), normalised.

        Materialised by landing_sensor for each new or changed landing file."""
        day = context.partition_key
        yield from ingest_file(
            cfg,
            store,
            "features",
            store.landing_file("features", day),
            store.batch_path("features", day),
            "feature_batch_schema",
            day,
            context.log,
        )

    @dg.asset(
        group_name="ingest",
        kinds={"parquet"},
        partitions_def=daily,
        check_specs=[schema_check("label_batch", "day's labels")],
    )
    def label_batch(context: dg.AssetExecutionContext, store: LandingStore) -> Iterator:
        """Labels that became known on one day (landing `labels/<day>.*`), for rows of earlier days.

        Materialised by landing_sensor for each new or changed landing file."""
        day = context.partition_key
        yield from ingest_file(
            cfg,
            store,
            "labels",
            store.landing_file("labels", day),
            store.batch_path("labels", day),
            "label_batch_schema",
            day,
            context.log,
        )

    return [reference_dataset, feature_batch, label_batch]
