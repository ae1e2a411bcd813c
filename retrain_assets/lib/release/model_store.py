"""The MLflow model registry: log a candidate, register it with its artifact hash, load it safely.

Models are stored with skops (never pickle) and loaded only from registered versions whose
artifacts still match the sha256 recorded at registration. Promotion is an alias switch
(``champion``); MLflow stages are deprecated and not used. mlflow is imported inside the
functions (it is slow to import). docs/release.md.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain_assets.lib.files import file_sha256

if TYPE_CHECKING:
    import pandas as pd

MODEL_ARTIFACT = "model"
# The only non-default types our pipelines contain (checked by a save/load round trip in tests).
TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
ARTIFACT_HASH_TAG = "artifact_sha256"
"""Model-version tag: sha256 over the version's artifact files, recorded at registration."""
# Written into a model folder by MLflow itself whenever it is fetched through a models:/ URI
# (name and version of the fetch); not part of what was logged, so not part of the hash.
MLFLOW_OWN_FILES = frozenset({"registered_model_meta"})
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


class ArtifactIntegrityError(RuntimeError):
    """A registered version's artifacts are not the ones recorded at registration."""


@dataclass(frozen=True)
class LoggedModel:
    """A model version logged and registered by one retraining run."""

    name: str
    version: str
    run_id: str
    model_uri: str
    artifact_sha256: str


def artifact_digest(folder: str | Path) -> str:
    """sha256 over every file of a model folder (relative path, size and content of each, in
    path order), MLflow's own bookkeeping file excepted."""
    root = Path(folder)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel in MLFLOW_OWN_FILES:
            continue
        digest.update(f"{rel}\0{path.stat().st_size}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _fetch(model_uri: str, dst: Path, registry_uri: str | None = None) -> Path:
    """Copy a model's artifacts into dst; the local folder. With a registry URI, a
    ``models:/<name>/<version>`` URI is resolved through that registry, not the global one."""
    import mlflow

    source = model_uri
    if registry_uri is not None:
        name, version = parse_registry_uri(model_uri)
        client = mlflow.MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
        source = client.get_model_version_download_uri(name, version)
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(dst), tracking_uri=registry_uri
        )
    )


def log_and_register(
    pipeline: Any,
    *,
    registered_name: str,
    input_example: pd.DataFrame,
    tags: dict[str, str],
) -> LoggedModel:
    """Log the fitted pipeline to the active MLflow run, then register it as a new version whose
    tags (these and the artifact hash) are written with it."""
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature

    # A classifier serves its probabilities, a regressor its predictions.
    predict_fn = "predict_proba" if hasattr(pipeline, "predict_proba") else "predict"
    signature = infer_signature(input_example, getattr(pipeline, predict_fn)(input_example))
    info = mlflow.sklearn.log_model(
        pipeline,
        name=MODEL_ARTIFACT,
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        signature=signature,
        input_example=input_example,
        pyfunc_predict_fn=predict_fn,
        # Listing requirements avoids MLflow's slow dependency inference subprocess.
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
    )
    with tempfile.TemporaryDirectory(prefix="logged-model-") as tmp:
        sha = artifact_digest(_fetch(info.model_uri, Path(tmp)))
    version = register(info.model_uri, registered_name, {**tags, ARTIFACT_HASH_TAG: sha})
    return LoggedModel(
        registered_name, version, info.run_id, f"models:/{registered_name}/{version}", sha
    )


def register(model_uri: str, registered_name: str, tags: dict[str, str]) -> str:
    """Register logged artifacts as a new version, its tags created with it; the version."""
    import mlflow

    return str(mlflow.register_model(model_uri, registered_name, tags=tags).version)


def parse_registry_uri(model_uri: str) -> tuple[str, str]:
    """(name, version) of ``models:/<name>/<version>``; anything else (a path, runs:/, an alias,
    a bare logged-model id) is refused: models are loaded from registered versions only."""
    found = REGISTRY_URI.match(model_uri)
    if found is None:
        raise ValueError(f"{model_uri!r} is not a registry URI models:/<name>/<version>")
    return found["name"], found["version"]


def verify_artifacts(
    model_uri: str, expected: str | None, into: Path, registry_uri: str | None = None
) -> Path:
    """Copy a registered version's artifacts into `into` and check them against the hash recorded
    at registration; the checked folder. ArtifactIntegrityError names the version."""
    name, version = parse_registry_uri(model_uri)
    if not expected:
        raise ArtifactIntegrityError(
            f"{name} v{version} records no {ARTIFACT_HASH_TAG}: its artifacts cannot be checked, "
            "refusing to use it"
        )
    folder = _fetch(model_uri, into, registry_uri)
    actual = artifact_digest(folder)
    if actual != expected:
        raise ArtifactIntegrityError(
            f"{name} v{version}: artifacts changed since registration ({ARTIFACT_HASH_TAG} "
            f"recorded {expected[:12]}..., found {actual[:12]}...): refusing to use it"
        )
    return folder


def load_skops(folder: Path, label: str) -> Any:
    """The pipeline in a checked model folder: skops only, with this module's trusted types (not
    the list the artifact carries in its own MLmodel file)."""
    import skops.io
    import yaml

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}
    flavor = (mlmodel.get("flavors") or {}).get("sklearn") or {}
    if flavor.get("serialization_format") != "skops":
        raise ArtifactIntegrityError(
            f"{label} is not a skops model (serialization_format "
            f"{flavor.get('serialization_format')!r}): refusing to load it"
        )
    path = (folder / str(flavor.get("pickled_model", "model.skops"))).resolve()
    if path.parent != folder.resolve() or path.suffix != ".skops":
        raise ArtifactIntegrityError(f"{label}: unexpected model file {path.name!r}")
    return skops.io.load(path, trusted=TRUSTED_TYPES)


def load_verified(model_uri: str, expected: str | None, registry_uri: str | None = None) -> Any:
    """The fitted pipeline of a registered version, loaded from a copy checked against the hash
    recorded at registration (skops, trusted types from TRUSTED_TYPES)."""
    with tempfile.TemporaryDirectory(prefix="verified-model-") as tmp:
        folder = verify_artifacts(model_uri, expected, Path(tmp), registry_uri)
        return load_skops(folder, model_uri)


def load_model(name: str, alias_or_version: str, registry_uri: str | None = None) -> Any:
    """Load a registered model by alias or version, checked against its recorded hash."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)
    if alias_or_version.isdigit():
        found = client.get_model_version(name, alias_or_version)
    else:
        found = client.get_model_version_by_alias(name, alias_or_version)
    return load_verified(
        f"models:/{name}/{found.version}", found.tags.get(ARTIFACT_HASH_TAG), registry_uri
    )


def load_json_artifact(artifact_uri: str, expected: str | None, registry_uri: str | None) -> Any:
    """A small JSON artifact (a version's calibrator), checked against the sha256 recorded at
    registration; ArtifactIntegrityError names the artifact when it differs or none is recorded."""
    import json

    import mlflow

    if not expected:
        raise ArtifactIntegrityError(f"{artifact_uri} has no recorded sha256: refusing to use it")
    with tempfile.TemporaryDirectory(prefix="artifact-") as tmp:
        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=tmp, tracking_uri=registry_uri
            )
        )
        actual = file_sha256(path)
        if actual != expected:
            raise ArtifactIntegrityError(
                f"{artifact_uri}: changed since registration (sha256 recorded {expected[:12]}..., "
                f"found {actual[:12]}...): refusing to use it"
            )
        return json.loads(path.read_text(encoding="utf-8"))
