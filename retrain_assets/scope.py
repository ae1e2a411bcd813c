"""Where one model's definitions live in a deployment: its asset keys, groups, job, sensor and
schedule names, resource keys and run tags.

A single-model config (``RETRAIN_CONFIG`` is one file) has no fleet name and keeps the bare names
of ``names.py`` (``drift_report``, ``ingest``, ``retrain_job``, ``store``), so its instance history
is the same as before fleets existed. A model of a fleet (a folder of model files) is named after
its file, and everything it defines is prefixed with that name: asset keys ``<model>/drift_report``,
groups ``<model>_ingest``, jobs ``<model>_retrain_job``, resources ``<model>_store``, and every run
carries ``retrain/model=<model>``. The domains' builders ask the scope; nothing else knows how many
models there are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

from retrain_assets import names

if TYPE_CHECKING:
    from retrain_assets.config import RetrainConfig
    from retrain_assets.resources.dvc import DvcRepository
    from retrain_assets.resources.landing import LandingStore
    from retrain_assets.resources.mlflow import MlflowTracking
    from retrain_assets.resources.model_registry import ModelRegistry

# The resources each model has (keys of the single-model Definitions).
STORE = "store"
DVC = "dvc"
MLFLOW = "mlflow"
REGISTRY = "registry"


@dataclass(frozen=True)
class Scope:
    """The names of one model's definitions; `model` is None for a single-model config."""

    model: str | None = None

    @classmethod
    def of(cls, cfg: RetrainConfig) -> Scope:
        return cls(cfg.fleet_model)

    def _prefixed(self, name: str) -> str:
        return name if self.model is None else f"{self.model}_{name}"

    def key(self, asset: str) -> dg.AssetKey:
        """An asset's key: `asset`, or `<model>/asset` in a fleet."""
        return dg.AssetKey(asset) if self.model is None else dg.AssetKey([self.model, asset])

    def keys(self, *assets: str) -> list[dg.AssetKey]:
        return [self.key(a) for a in assets]

    def selection(self, *assets: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*self.keys(*assets))

    def op(self, asset: str) -> str:
        """The op (step) name of an asset, as run config addresses it."""
        return self.key(asset).to_python_identifier()

    def group(self, group: str) -> str:
        """An asset group: `ingest`, or `<model>_ingest` in a fleet."""
        return self._prefixed(group)

    def name(self, definition: str) -> str:
        """A job's, sensor's or schedule's name: `retrain_job`, or `<model>_retrain_job`."""
        return self._prefixed(definition)

    def resource(self, key: str) -> str:
        """A resource key: `store`, or `<model>_store` in a fleet."""
        return self._prefixed(key)

    def resource_keys(self, *keys: str) -> set[str]:
        return {self.resource(k) for k in keys}

    def run_tags(self, tags: Mapping[str, str] | None = None) -> dict[str, str]:
        """Tags for a run of this model: `tags`, plus `retrain/model` in a fleet and, on runs
        that carry a retraining reason (retraining, canary, rollback), `retrain/cycle`, which the
        run queue limits to one run per model."""
        out = dict(tags or {})
        if self.model is not None:
            out[names.MODEL_TAG] = self.model
            if names.REASON_TAG in out:
                out[names.CYCLE_TAG] = self.model
        return out

    def resources(self, context: Any) -> ScopedResources:
        """This model's resources from a step's context (the step must require their keys)."""
        return ScopedResources(self, context.resources)


class ScopedResources:
    """One model's resources, read from a step's resources under the scope's keys."""

    def __init__(self, scope: Scope, resources: Any) -> None:
        self._scope = scope
        self._resources = resources

    def _get(self, key: str) -> Any:
        return getattr(self._resources, self._scope.resource(key))

    @property
    def store(self) -> LandingStore:
        return self._get(STORE)

    @property
    def dvc(self) -> DvcRepository:
        return self._get(DVC)

    @property
    def mlflow(self) -> MlflowTracking:
        return self._get(MLFLOW)

    @property
    def registry(self) -> ModelRegistry:
        return self._get(REGISTRY)


SINGLE = Scope()
"""The scope of a single-model config: the bare names."""
