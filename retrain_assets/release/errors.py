"""Refusals of the release steps: decisions, not outages, so they are never retried."""

import dagster as dg

from retrain_assets import names
from retrain_assets.resources.model_registry import ModelRegistry


def refuse(message: str) -> dg.Failure:
    """A decision, not an outage: fails the step without retrying it."""
    return dg.Failure(message, allow_retries=False)


def checked(registry: ModelRegistry, version: str) -> str:
    """The version's artifact hash, after checking its artifacts against it."""
    from retrain_assets.lib.release.model_store import ArtifactIntegrityError

    try:
        return registry.verify(version)
    except ArtifactIntegrityError as exc:
        raise refuse(f"not moving '{names.CHAMPION}' to v{version}: {exc}") from None
