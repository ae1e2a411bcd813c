"""Ingest: landing files, checked against the contract, stored normalised under the workdir.

Validation happens before anything is written: a batch that breaks the contract fails its run
with a message naming the file and the column, its blocking ``*_schema`` check records why, and no
normalised file (so nothing any model could learn from) is stored. The landing file stays as it is.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from retrain_assets.config import RetrainConfig
from retrain_assets.lib.contract import (
    BatchReport,
    LandingFileError,
    Violation,
    check_frame,
    read_table,
)
from retrain_assets.resources.storage import LandingStore, write_parquet_atomic

PREVIEW_ROWS = 5


def _violations_table(violations: list[Violation]) -> str:
    lines = ["| rule | column | detail |", "|---|---|---|"]
    lines += [f"| {v.rule} | {v.column or '-'} | {v.detail} |" for v in violations]
    return "\n".join(lines)


def _null_table(null_rates: dict[str, float]) -> str:
    lines = ["| column | null rate |", "|---|---|"]
    lines += [f"| {c} | {r:.2%} |" for c, r in null_rates.items()]
    return "\n".join(lines)


def _read_and_check(cfg: RetrainConfig, kind: str, path: Path) -> BatchReport:
    data = cfg.data
    try:
        raw = read_table(path)
    except LandingFileError as exc:
        return BatchReport(pd.DataFrame(), [Violation("unreadable", None, str(exc))])
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


def ingest_file(
    cfg: RetrainConfig, store: LandingStore, kind: str, path: Path | None, out: Path, check: str
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
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=check,
        passed=True,
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
        )

    return [reference_dataset, feature_batch, label_batch]
