"""Run tags shared by sensors, schedules and assets."""

REASON_TAG = "retrain/reason"
"""Why a retraining run started (bootstrap, drift, performance, schedule, manual); the run queue
lets one run with this tag execute at a time."""
EVIDENCE_TAG = "retrain/evidence"
"""The figures behind the reason, as text a person can read on the run page."""
DATA_DAY_TAG = "retrain/data_day"
"""The data day (partition key) a retraining was decided on; cooldowns count from it."""
