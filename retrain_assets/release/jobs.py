"""The jobs that move the champion: the canary's verdict and a rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.run_config import rollback_run_config
from retrain_assets.scope import SINGLE, Scope

if TYPE_CHECKING:  # the type define_asset_job returns (not exported by dagster)
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as AssetJob,
    )

AFTER_A_CHANGE = (names.PROMOTED_MODEL, names.REFERENCE_PROFILE, names.MODEL_HISTORY)
"""What follows any move of the champion: the alias, the new reference, the history."""


def build_release_jobs(scope: Scope = SINGLE) -> list[AssetJob]:
    canary_job = dg.define_asset_job(
        scope.name(names.CANARY_JOB),
        selection=scope.selection(names.CANARY_EVALUATION, *AFTER_A_CHANGE),
        description="The challenger against the champion on live labelled rows; promotion when "
        "it is not inferior, and the new champion's reference profile.",
        # Champion changes run one at a time with retrainings: the queue limits this tag.
        tags=scope.run_tags({names.REASON_TAG: "canary"}),
        executor_def=dg.in_process_executor,
    )
    rollback_job = dg.define_asset_job(
        scope.name(names.ROLLBACK_JOB),
        selection=scope.selection(*AFTER_A_CHANGE),
        description="Move `champion` back to the version it replaced (set the reason in the "
        "launchpad); the reference profile follows.",
        config=rollback_run_config("rollback from the Dagster UI", scope=scope),
        tags=scope.run_tags({names.REASON_TAG: "rollback"}),
        executor_def=dg.in_process_executor,
    )
    return [canary_job, rollback_job]
