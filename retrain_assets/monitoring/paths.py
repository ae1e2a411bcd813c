"""Where the monitoring assets keep their files under the workdir (relative parts)."""

PROFILE_DIR = ("monitoring", "reference_profile")
REFERENCE_SAMPLE = ("monitoring", "reference_sample.parquet")
DRIFT_DIR = ("monitoring", "drift")
PREDICTIONS_DIR = ("monitoring", "predictions")
PERFORMANCE_DIR = ("monitoring", "performance")
HISTORY_CHART = ("monitoring", "model_history.png")
