"""ModelRegistry.load keeps the last few verified models of a process: the same version with the
same recorded artifact hash is not fetched and unpacked again, anything else is."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from retrain_assets.lib.release import model_store as model_io
from retrain_assets.resources import model_registry
from retrain_assets.resources.model_registry import ModelRegistry


@dataclass
class Fetches:
    """Each load_verified call (a fetch, hash check and unpack) as (uri, expected hash); a
    version's recorded hash is 'sha-<version>' unless `tags` says otherwise ('' = none)."""

    calls: list[tuple[str, str | None]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> Fetches:
    found = Fetches()
    calls, tags = found.calls, found.tags

    def load_verified(uri: str, expected: str | None, registry_uri: str | None = None) -> object:
        if not expected:
            raise model_io.ArtifactIntegrityError(f"{uri} records no hash")
        calls.append((uri, expected))
        return object()

    def version_tags(self: ModelRegistry, version: str) -> dict[str, str]:
        sha = tags.get(version, f"sha-{version}")
        return {model_io.ARTIFACT_HASH_TAG: sha} if sha else {}

    monkeypatch.setattr(model_io, "load_verified", load_verified)
    monkeypatch.setattr(ModelRegistry, "version_tags", version_tags)
    monkeypatch.setattr(model_registry, "_loaded", model_registry.OrderedDict())
    return found


def test_the_same_version_and_hash_is_loaded_once(fetched: Fetches) -> None:
    registry = ModelRegistry(tracking_uri="sqlite:///a.db", registered_name="m")
    first = registry.load("1")
    assert registry.load("1") is first
    assert fetched.calls == [("models:/m/1", "sha-1")]
    # another version, registry or model name is another model
    assert registry.load("2") is not first
    assert ModelRegistry(tracking_uri="sqlite:///b.db", registered_name="m").load("1") is not first
    assert ModelRegistry(tracking_uri="sqlite:///a.db", registered_name="n").load("1") is not first
    assert len(fetched.calls) == 4


def test_a_changed_hash_is_checked_again_and_no_hash_is_never_served(fetched: Fetches) -> None:
    registry = ModelRegistry(tracking_uri="sqlite:///a.db", registered_name="m")
    first = registry.load("1")
    fetched.tags["1"] = "sha-other"  # re-registered artifacts: verified against the new hash
    assert registry.load("1") is not first
    assert fetched.calls[-1] == ("models:/m/1", "sha-other")
    fetched.tags["1"] = ""  # the hash tag removed: refused, never served from memory
    with pytest.raises(model_io.ArtifactIntegrityError):
        registry.load("1")


def test_only_the_last_few_models_are_kept(fetched: Fetches) -> None:
    registry = ModelRegistry(tracking_uri="sqlite:///a.db", registered_name="m")
    versions = [str(v) for v in range(1, model_registry.KEEP_LOADED + 2)]
    for version in versions:
        registry.load(version)
    assert len(model_registry._loaded) == model_registry.KEEP_LOADED
    registry.load(versions[0])  # evicted: fetched again
    assert len(fetched.calls) == len(versions) + 1
