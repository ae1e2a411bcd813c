"""Release sensors: the canary's trigger (enough labelled shadow rows) and the guardrail (a fresh
champion doing worse than the one it replaced, on the same rows)."""

import json
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.config import RetrainConfig
from retrain_assets.records import new_materializations, newest_gated_version
from retrain_assets.run_config import rollback_run_config
from retrain_assets.scope import SINGLE, Scope

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )

KEEP_VERSIONS = 20  # challengers whose shadow rows the canary cursor counts


def canary_request(scope: Scope, version: str, total: int, day: str | None) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"canary@v{version}",
        job_name=scope.name(names.CANARY_JOB),
        tags={
            names.REASON_TAG: "canary",
            names.EVIDENCE_TAG: f"{total} labelled shadow rows for v{version} by {day}",
            names.DATA_DAY_TAG: day or "",
        },
    )


def evaluate_canary_sensor(context: dg.SensorEvaluationContext, need: int, scope: Scope = SINGLE):
    """Count each challenger's labelled shadow rows from performance reports; one canary run
    when a challenger reaches `need`."""
    state = json.loads(context.cursor) if context.cursor else {"after": None, "rows": {}}
    requests: list[dg.RunRequest] = []
    replaced: list[str] = []
    for storage_id, day, meta in new_materializations(
        context.instance, scope.key(names.PERFORMANCE_REPORT), state["after"]
    ):
        state["after"] = storage_id
        version = str(meta.get("challenger_version", "none"))
        if version == "none":
            continue
        before = state["rows"].get(version, 0)
        total = before + int(meta.get("challenger_labelled_rows", 0))
        state["rows"][version] = total
        if not before < need <= total:
            continue
        # A soft trigger may have replaced the challenger since this report (one trained before
        # a change cannot answer it): the canary judges only the challenger still waiting.
        newest = newest_gated_version(context.instance, scope)
        if newest is not None and newest != version:
            replaced.append(f"v{version} reached {total} shadow rows but v{newest} replaced it")
            continue
        requests.append(canary_request(scope, version, total, day))
    state["rows"] = dict(list(state["rows"].items())[-KEEP_VERSIONS:])
    context.update_cursor(json.dumps(state))
    return requests or dg.SkipReason(
        "; ".join(replaced) or "no challenger with enough labelled shadow rows"
    )


def evaluate_guardrail(context: dg.SensorEvaluationContext, scope: Scope = SINGLE):
    """One rollback run per champion whose performance report flags a regression."""
    after = int(context.cursor) if context.cursor else None
    requests: list[dg.RunRequest] = []
    for storage_id, day, meta in new_materializations(
        context.instance, scope.key(names.PERFORMANCE_REPORT), after
    ):
        after = storage_id
        if not meta.get("guardrail_regression"):
            continue
        champion = str(meta.get("champion_version"))
        reason = f"guardrail on {day}: {meta.get('guardrail_reason', '')}"
        requests.append(
            dg.RunRequest(
                run_key=f"guardrail@v{champion}",
                job_name=scope.name(names.ROLLBACK_JOB),
                run_config=rollback_run_config(reason, names.GUARDRAIL_SENSOR, scope),
                tags={names.REASON_TAG: "rollback", names.EVIDENCE_TAG: reason[:1000]},
            )
        )
    if after is not None:
        context.update_cursor(str(after))
    return requests or dg.SkipReason("no post-promotion regression")


def build_release_sensors(
    cfg: RetrainConfig,
    canary_job: "AssetJob",
    rollback_job: "AssetJob",
) -> list[dg.SensorDefinition]:
    need = cfg.canary.min_rows
    scope = Scope.of(cfg)

    @dg.sensor(
        name=scope.name(names.CANARY_SENSOR),
        minimum_interval_seconds=cfg.canary.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        job=canary_job,
        description=f"Evaluate the challenger once {need} labelled rows were scored by both it "
        "and the champion (counted from performance reports).",
    )
    def canary_sensor(context: dg.SensorEvaluationContext):
        return evaluate_canary_sensor(context, need, scope)

    @dg.sensor(
        name=scope.name(names.GUARDRAIL_SENSOR),
        minimum_interval_seconds=cfg.guardrail.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING
        if cfg.guardrail.enabled
        else dg.DefaultSensorStatus.STOPPED,
        job=rollback_job,
        description=f"Roll back when, in the first {cfg.guardrail.batches} labelled batches "
        "after a promotion, the new champion does worse than the previous one on the same rows.",
    )
    def guardrail_sensor(context: dg.SensorEvaluationContext):
        return evaluate_guardrail(context, scope)

    return [canary_sensor, guardrail_sensor]
