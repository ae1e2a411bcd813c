"""RETRAIN_EXECUTOR selects retrain_job's executor; the default stays in-process, and broker URLs
from the environment stay {env: ...} sources (no server needed here)."""

from __future__ import annotations

import pytest

from retrain_assets.ingest.jobs import build_ingest_jobs
from retrain_assets.training import jobs


def test_default_is_in_process(monkeypatch) -> None:
    monkeypatch.delenv(jobs.EXECUTOR_ENV, raising=False)
    assert jobs.retrain_executor() is jobs.dg.in_process_executor


def test_celery_reads_urls_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(jobs.EXECUTOR_ENV, "celery")
    monkeypatch.delenv(jobs.CELERY_BROKER_ENV, raising=False)
    monkeypatch.delenv(jobs.CELERY_BACKEND_ENV, raising=False)
    assert jobs.celery_config() == jobs.CELERY_DEFAULTS
    monkeypatch.setenv(jobs.CELERY_BROKER_ENV, "redis://:secret@broker:6379/0")
    assert jobs.celery_config()["broker"] == {"env": jobs.CELERY_BROKER_ENV}
    assert jobs.build_retrain_job().executor_def.name == "retrain_celery_executor"
    daily = jobs.dg.DailyPartitionsDefinition(start_date="2024-01-01")
    assert all(j.executor_def is jobs.dg.in_process_executor for j in build_ingest_jobs(daily))


def test_unknown_executor_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv(jobs.EXECUTOR_ENV, "threads")
    with pytest.raises(ValueError, match="RETRAIN_EXECUTOR='threads'"):
        jobs.retrain_executor()
