"""Read access to the MLflow model registry (aliases, version tags, models), without starting an
MLflow run: monitoring steps read the registry, only retraining runs write tracking data.

Models are loaded only as registered versions (``models:/<name>/<version>``), from a copy whose
artifacts match the sha256 recorded at registration (see ``lib/registry.py``).

A process keeps the last few models it loaded, keyed by registry, name, version and that recorded
hash: loading the same version again (a replay scores every day's batch with the same champion)
reuses the pipeline already checked and unpacked instead of fetching, hashing and unpacking the
artifacts again. A new hash on the version (re-tagged) is a different key and is checked afresh.
"""

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import dagster as dg

# Answers that mean "there is no such alias / model (yet)"; anything else (an unreachable server
# above all) is an error, never "no champion".
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


KEEP_LOADED = 4
"""Models a process keeps loaded (champion, challenger, previous champion, one more)."""
_loaded: "OrderedDict[tuple[str, str, str, str], Any]" = OrderedDict()
_calibrators: "OrderedDict[tuple[str, str, str, str], Any]" = OrderedDict()
"""The calibrators of those versions, kept the same way (checked once per recorded hash)."""
_loaded_lock = threading.Lock()


def _keep(cache: "OrderedDict[tuple[str, str, str, str], Any]", key: tuple, value: Any) -> None:
    with _loaded_lock:
        cache[key] = value
        while len(cache) > KEEP_LOADED:
            cache.popitem(last=False)


def _not_found(exc: Exception) -> bool:
    from retrain_assets.resources.mlflow import is_unreachable

    return getattr(exc, "error_code", None) in _NOT_FOUND and not is_unreachable(exc)


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

        from retrain_assets.resources.mlflow import ready_store

        ready_store(self.tracking_uri)
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def alias_version(self, alias: str) -> str | None:
        """The version behind an alias, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(
                self.client().get_model_version_by_alias(self.registered_name, alias).version
            )
        except MlflowException as exc:
            if _not_found(exc):
                return None
            raise

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(self.registered_name, version).tags)

    def test_metric(self, version: str) -> float | None:
        """The version's primary metric on its own test rows (``test_metric``; ``test_auc`` on
        a binary version registered before tasks existed); None when neither is recorded."""
        from retrain_assets import names

        tags = self.version_tags(version)
        value = tags.get(names.TEST_METRIC_TAG) or tags.get("test_auc")
        return float(value) if value else None

    def set_alias(self, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(self.registered_name, alias, version)

    def delete_alias(self, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client().delete_registered_model_alias(self.registered_name, alias)
        except MlflowException as exc:  # already gone: deleting is idempotent
            if not _not_found(exc):
                raise

    def model_url(self, version: str) -> str:
        """The version's page in the MLflow UI."""
        return f"{self.ui_url.rstrip('/')}/#/models/{self.registered_name}/versions/{version}"

    def model_uri(self, version: str) -> str:
        return f"models:/{self.registered_name}/{version}"

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(self.registered_name, version, key, str(value))

    def verify(self, version: str) -> str:
        """Check a version's artifacts against the hash recorded at registration; the hash.
        Raises ArtifactIntegrityError (naming the version) when they differ or none is recorded."""
        from retrain_assets.lib.release import model_store as model_io

        expected = self.version_tags(version).get(model_io.ARTIFACT_HASH_TAG)
        with tempfile.TemporaryDirectory(prefix="verify-model-") as tmp:
            model_io.verify_artifacts(
                self.model_uri(version), expected, Path(tmp), self.tracking_uri
            )
        return str(expected)

    def load(self, version: str) -> Any:
        """The fitted pipeline of a registered version, from artifacts checked against the hash
        recorded at registration (skops, trusted types listed in lib/registry.py); the same
        pipeline object again while the version's recorded hash is unchanged (KEEP_LOADED)."""
        from retrain_assets.lib.release import model_store as model_io

        expected = self.version_tags(version).get(model_io.ARTIFACT_HASH_TAG)
        key = (self.tracking_uri, self.registered_name, str(version), expected or "")
        with _loaded_lock:
            if expected and key in _loaded:
                _loaded.move_to_end(key)
                return _loaded[key]
        model = model_io.load_verified(self.model_uri(version), expected, self.tracking_uri)
        _keep(_loaded, key, model)
        return model

    def calibrator(self, version: str, tags: dict[str, str] | None = None) -> Any:
        """The version's calibrator (lib.monitoring.estimation.Calibrator), checked against the
        sha256 recorded at registration; the identity for a version registered without one
        (before calibration existed): its scores are then read as probabilities."""
        from retrain_assets import names
        from retrain_assets.lib.monitoring.estimation import IDENTITY, Calibrator
        from retrain_assets.lib.release import model_store as model_io

        tags = self.version_tags(version) if tags is None else tags
        uri, expected = tags.get(names.CALIBRATION_URI), tags.get(names.CALIBRATION_SHA)
        if not uri:
            return IDENTITY
        key = (self.tracking_uri, self.registered_name, str(version), expected or "")
        with _loaded_lock:
            if expected and key in _calibrators:
                _calibrators.move_to_end(key)
                return _calibrators[key]
        calibrator = Calibrator.from_dict(
            model_io.load_json_artifact(uri, expected, self.tracking_uri)
        )
        _keep(_calibrators, key, calibrator)
        return calibrator
