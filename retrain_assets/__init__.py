"""retrain_assets: automatic model retraining as a Dagster code location (docs/architecture.md)."""
