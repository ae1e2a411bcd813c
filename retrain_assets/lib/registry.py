"""The MLflow model registry: logging a candidate, reading and moving aliases.

Models are stored with skops, never pickle, and load with an explicit list of trusted types.
Promotion is an alias switch (``champion``); stages are deprecated in MLflow 3 and not used.
mlflow is imported inside the functions: it takes a second to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MODEL_ARTIFACT = "model"
# The only non-default types our pipelines contain (checked by a save/load round trip in tests).
TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]


@dataclass(frozen=True)
class LoggedModel:
    """A model version logged and registered by one retraining run."""

    name: str
    version: str
    run_id: str
    model_uri: str


def log_and_register(
    pipeline: Any,
    *,
    registered_name: str,
    input_example: pd.DataFrame,
    tags: dict[str, str],
) -> LoggedModel:
    """Log the fitted pipeline to the active MLflow run and register it as a new version."""
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, pipeline.predict_proba(input_example))
    info = mlflow.sklearn.log_model(
        pipeline,
        name=MODEL_ARTIFACT,
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        signature=signature,
        input_example=input_example,
        registered_model_name=registered_name,
        pyfunc_predict_fn="predict_proba",
        # Listing requirements avoids MLflow's slow dependency inference subprocess.
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered_name, version, key, value)
    return LoggedModel(
        registered_name, version, info.run_id, f"models:/{registered_name}/{version}"
    )


def load_model(name: str, alias_or_version: str) -> Any:
    """Load a registered model (skops, trusted types recorded at logging time)."""
    import mlflow

    ref = f"@{alias_or_version}" if not alias_or_version.isdigit() else f"/{alias_or_version}"
    return mlflow.sklearn.load_model(f"models:/{name}{ref}")
