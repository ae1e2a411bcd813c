"""Where the monitoring assets keep their files under the workdir (relative parts)."""

from retrain_assets import names

PROFILE_DIR = ("monitoring", names.REFERENCE_PROFILE)
REFERENCE_SAMPLE = ("monitoring", "reference_sample.parquet")
REFERENCE_SOURCE = "source.json"  # in PROFILE_DIR: what the profile was built from
DRIFT_DIR = ("monitoring", "drift")
PREDICTIONS_DIR = ("monitoring", names.PREDICTIONS)
PERFORMANCE_DIR = ("monitoring", "performance")
ESTIMATED_DIR = ("monitoring", names.ESTIMATED_PERFORMANCE)
HISTORY_CHART = ("monitoring", "model_history.png")
