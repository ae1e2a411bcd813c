"""Read access to the MLflow model registry (aliases, version tags, models), without starting an
MLflow run: monitoring steps read the registry, only retraining runs write tracking data."""

import contextlib
from typing import Any

import dagster as dg


class ModelRegistry(dg.ConfigurableResource):
    """The registered model the platform retrains."""

    tracking_uri: str
    """Tracking/registry URI."""
    registered_name: str
    """Registered model name."""
    ui_url: str = "http://127.0.0.1:5000"
    """Base URL of the MLflow UI, for links in metadata."""

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

    def set_alias(self, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(self.registered_name, alias, version)

    def delete_alias(self, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # already gone: deleting is idempotent
            self.client().delete_registered_model_alias(self.registered_name, alias)

    def model_url(self, version: str) -> str:
        """The version's page in the MLflow UI."""
        return f"{self.ui_url.rstrip('/')}/#/models/{self.registered_name}/versions/{version}"

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(self.registered_name, version, key, str(value))

    def load(self, version: str) -> Any:
        """The fitted pipeline of a registered version (skops, trusted types from logging time)."""
        import mlflow

        return mlflow.sklearn.load_model(f"models:/{self.registered_name}/{version}")
