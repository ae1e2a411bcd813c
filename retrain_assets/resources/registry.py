"""Read access to the MLflow model registry (aliases, version tags, models), without starting an
MLflow run: monitoring steps read the registry, only retraining runs write tracking data."""

from typing import Any

import dagster as dg


class ModelRegistry(dg.ConfigurableResource):
    """The registered model the platform retrains."""

    tracking_uri: str
    """Tracking/registry URI."""
    registered_name: str
    """Registered model name."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        import mlflow

        # models:/ URIs resolve against the process-wide registry URI.
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def alias_version(self, alias: str) -> str | None:
        """The version behind an alias, or None (also when the model is not registered yet)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(
                self.client().get_model_version_by_alias(self.registered_name, alias).version
            )
        except MlflowException:
            return None

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(self.registered_name, version).tags)

    def load(self, version: str) -> Any:
        """The fitted pipeline of a registered version (skops, trusted types from logging time)."""
        import mlflow

        return mlflow.sklearn.load_model(f"models:/{self.registered_name}/{version}")
