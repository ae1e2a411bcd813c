"""Ingest: landing files, checked against the contract, stored normalised under the workdir.

Validation happens before anything is written: a batch that breaks the contract fails its run
with a message naming the file and the column, its blocking ``*_schema`` check records why, and no
normalised file (so nothing any model could learn from) is stored. The landing file stays as it is.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.ingest.notes import feature_notes, label_notes
from retrain_assets.lib.data.landing_files import LandingFileError
from retrain_assets.lib.files import write_parquet
from retrain_assets.lib.tables import markdown_table
from retrain_assets.resources.landing import LandingStore
from retrain_assets.scope import STORE, Scope

if TYPE_CHECKING:  # pandas (and the contract, which needs it) is imported inside the steps
    import pandas as pd

    from retrain_assets.lib.data.contract import BatchReport

PREVIEW_ROWS = 5
Event = dg.MaterializeResult | dg.AssetCheckResult


def read_and_check(cfg: RetrainConfig, kind: str, path: Path) -> "BatchReport":
    """The landing file read and held to the contract (violations instead of exceptions)."""
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
        task=cfg.task,
    )


def rejected(report: "BatchReport", path: Path, kind: str, check: str) -> Iterator[Event]:
    """The failed schema check, then the failure that stops the run (nothing is stored)."""
    reason = report.message(path)
    table = markdown_table(
        ["rule", "column", "detail"],
        [(v.rule, v.column or "-", v.detail) for v in report.violations],
    )
    yield dg.AssetCheckResult(
        check_name=check,
        passed=False,
        description=reason,
        metadata={
            "file": dg.MetadataValue.path(str(path)),
            "violations": dg.MetadataValue.md(table),
            "failed_rules": ", ".join(sorted({v.rule for v in report.violations})),
        },
    )
    raise dg.Failure(description=f"{kind} batch rejected:\n{reason}")


def target_summary(task: str, target: "pd.Series") -> dict:
    """The batch's labels in a line: the positive rate (binary), the class shares (multiclass),
    mean and spread (regression)."""
    if task == "binary":
        return {"positive_rate": float(target.mean())}
    if task == "regression":
        return {"target_mean": float(target.mean()), "target_std": float(target.std(ddof=0))}
    shares = target.value_counts(normalize=True).sort_index()
    return {
        "classes": len(shares),
        "class_shares": ", ".join(f"{c}: {v:.1%}" for c, v in shares.items()),
    }


def batch_metadata(
    cfg: RetrainConfig, report: "BatchReport", kind: str, path: Path, out: Path
) -> dict:
    frame = report.frame
    metadata: dict[str, dg.RawMetadataValue] = {
        "landing_file": dg.MetadataValue.path(str(path)),
        "stored_as": dg.MetadataValue.path(str(out)),
        "dagster/row_count": len(frame),
        "preview": dg.MetadataValue.md(frame.head(PREVIEW_ROWS).to_markdown(index=False)),
    }
    if report.null_rates:
        rates = [(c, f"{r:.2%}") for c, r in report.null_rates.items()]
        metadata["null_rates"] = dg.MetadataValue.md(markdown_table(["column", "null rate"], rates))
        metadata["max_null_rate"] = float(max(report.null_rates.values()))
    if cfg.data.target_column in frame and kind != "features":
        metadata.update(target_summary(cfg.task, frame[cfg.data.target_column]))
    if report.ignored_columns:
        metadata["ignored_columns"] = ", ".join(report.ignored_columns)
    return metadata


def batch_notes(
    cfg: RetrainConfig, store: LandingStore, report: "BatchReport", kind: str, day: str | None
) -> tuple[list[str], dict]:
    notes: list[str] = []
    extra: dict = {}
    if report.ignored_columns:
        notes.append(
            f"dropped {len(report.ignored_columns)} column(s) the contract does not use: "
            f"{report.ignored_columns}"
        )
    if kind == "features":
        found, extra = feature_notes(store, report.frame)
        notes += found
    elif kind == "labels" and day is not None:
        found, extra = label_notes(cfg, store, day, report.frame)
        notes += found
    return notes, extra


def ingest_file(
    cfg: RetrainConfig,
    store: LandingStore,
    kind: str,
    out: Path,
    check: str,
    day: str | None = None,
    log: dg.DagsterLogManager | None = None,
) -> Iterator[Event]:
    """Check one landing file and, only if it holds to the contract, store it normalised."""
    path = store.landing_file(kind, day)
    if path is None:
        raise dg.Failure(f"no {kind} landing file for this partition under {store.landing_dir}")
    report = read_and_check(cfg, kind, path)
    if not report.ok:
        yield from rejected(report, path, kind, check)
    notes, extra = batch_notes(cfg, store, report, kind, day)
    write_parquet(report.frame, out)
    metadata = {**batch_metadata(cfg, report, kind, path, out), **extra}
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
            "rows": len(report.frame),
            "max_null_rate_allowed": cfg.ingest.max_null_rate,
            "columns": len(report.frame.columns),
        },
    )


def schema_check(
    cfg: RetrainConfig, asset: str, check: str, what: str, daily: dg.PartitionsDefinition | None
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        check,
        asset=Scope.of(cfg).key(asset),
        blocking=True,
        partitions_def=daily,
        description=f"The {what} holds to the data contract: columns, dtypes, unique ids, "
        f"null rate ≤ {cfg.ingest.max_null_rate:.0%}.",
    )


DAY_BATCHES = {
    "features": (
        names.FEATURE_BATCH,
        names.FEATURE_BATCH_SCHEMA,
        "day's production batch",
        "One day's production batch (landing `features/<day>.*`), normalised.",
    ),
    "labels": (
        names.LABEL_BATCH,
        names.LABEL_BATCH_SCHEMA,
        "day's labels",
        "Labels that became known on one day (landing `labels/<day>.*`), for rows of earlier days.",
    ),
}


def build_reference_dataset(cfg: RetrainConfig) -> dg.AssetsDefinition:
    spec = schema_check(
        cfg, names.REFERENCE_DATASET, names.REFERENCE_DATASET_SCHEMA, "reference set", None
    )

    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(names.REFERENCE_DATASET),
        group_name=scope.group(names.INGEST_GROUP),
        kinds={"parquet"},
        check_specs=[spec],
        required_resource_keys=scope.resource_keys(STORE),
    )
    def reference_dataset(context: dg.AssetExecutionContext) -> Iterator[Event]:
        """The labelled history the first model learns from (landing `reference.*`).

        Refreshed by landing_sensor when the reference file is new or changed."""
        store = scope.resources(context).store
        out = store.reference_path()
        yield from ingest_file(cfg, store, "reference", out, names.REFERENCE_DATASET_SCHEMA)

    return reference_dataset


def build_day_batch(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition, kind: str
) -> dg.AssetsDefinition:
    """feature_batch[day] or label_batch[day]: one landing day file, checked and stored."""
    asset, check, what, description = DAY_BATCHES[kind]
    scope = Scope.of(cfg)

    @dg.asset(
        key=scope.key(asset),
        group_name=scope.group(names.INGEST_GROUP),
        kinds={"parquet"},
        partitions_def=daily,
        check_specs=[schema_check(cfg, asset, check, what, daily)],
        description=f"{description}\n\nMaterialised by landing_sensor for each new or changed "
        "landing file.",
        required_resource_keys=scope.resource_keys(STORE),
    )
    def day_batch(context: dg.AssetExecutionContext) -> Iterator[Event]:
        store = scope.resources(context).store
        day = context.partition_key
        out = store.batch_path(kind, day)
        yield from ingest_file(cfg, store, kind, out, check, day, context.log)

    return day_batch


def build_ingest_assets(
    cfg: RetrainConfig, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """reference_dataset, feature_batch[day] and label_batch[day] for one config."""
    return [
        build_reference_dataset(cfg),
        build_day_batch(cfg, daily, "features"),
        build_day_batch(cfg, daily, "labels"),
    ]
