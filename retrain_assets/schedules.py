"""The hard fallback: a retraining at least every N data days, whatever the soft triggers did."""

import dagster as dg

from retrain_assets.config import RetrainConfig
from retrain_assets.history import challenger_in_shadow, days_between, last_retrain_day
from retrain_assets.jobs import RETRAIN_JOB
from retrain_assets.tags import DATA_DAY_TAG, EVIDENCE_TAG, REASON_TAG


def build_weekly_schedule(cfg: RetrainConfig, jobs: dict) -> dg.ScheduleDefinition:
    limit = cfg.schedule.max_days_between_retrains
    status = dg.DefaultScheduleStatus.RUNNING if cfg.schedule.enabled else None

    @dg.schedule(
        name="weekly_retrain_schedule",
        cron_schedule=cfg.schedule.cron,
        job=jobs[RETRAIN_JOB],
        execution_timezone="UTC",
        default_status=status or dg.DefaultScheduleStatus.STOPPED,
        description=f"Retrain when the last retraining is {limit} or more data days old.",
    )
    def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext):
        instance = context.instance
        newest = instance.get_latest_materialization_event(dg.AssetKey("feature_batch"))
        if newest is None or newest.asset_materialization is None:
            return dg.SkipReason("no production batch ingested yet")
        today = newest.asset_materialization.partition
        if today is None:
            return dg.SkipReason("the newest feature batch has no partition")
        shadow = challenger_in_shadow(instance)
        if shadow is not None:
            return dg.SkipReason(f"challenger v{shadow} is still in its canary")
        last = last_retrain_day(instance)
        age = days_between(last, today) if last else None
        if age is not None and age < limit:
            return dg.SkipReason(f"last retraining on {last}, {age} data days before {today}")
        evidence = f"last retraining {last or 'never'}; {age} data days >= {limit} on {today}"
        return dg.RunRequest(
            run_key=f"schedule@{today}",
            tags={REASON_TAG: "schedule", EVIDENCE_TAG: evidence, DATA_DAY_TAG: today},
        )

    return weekly_retrain_schedule
