"""A fleet: ``RETRAIN_CONFIG`` names a folder of model files, one model per file.

    fleet/                       <- RETRAIN_CONFIG
      loan_default.yaml          <- model "loan_default": the file's stem is the model's name
      churn.yml                  <- model "churn"
      loan_default/landing/      <- its data, wherever the file's data.landing_dir says
      .retrain/mlflow.db         <- default: one MLflow store for the whole fleet (one UI)
      .retrain/loan_default/     <- default: the model's workdir

Only ``*.yaml`` and ``*.yml`` files directly in the folder are models (not sub-folders, not hidden
files). A name must match ``MODEL_NAME`` (a letter, then letters, digits or ``_``): it prefixes the
model's Dagster asset keys, groups, jobs and resource keys. Each file is an ordinary config (the
keys of ``retrain_assets.config``; relative paths resolve against the folder); where a file does
not set them, a model's file gets these defaults before validation:

    workdir                 .retrain/<name>
    model.registered_name   <name>
    mlflow.experiment_name  <name>
    mlflow.tracking_uri     sqlite:///<folder>/.retrain/mlflow.db  (nothing is created here)

One broken model must not take the others down: a file that does not load (bad YAML, an unknown
key, a wrong type, a missing landing_dir, an invalid or duplicate name) or that collides with a
model before it in sorted order (the same or a nested workdir; the same registered model or
experiment in the same tracking store) is listed in ``Fleet.broken`` with the error, and the rest
load. Even when every model is broken the fleet is returned: the caller decides.

``RETRAIN_CONFIG`` naming one file is a fleet of one (``Fleet.single``), loaded by ``load_config``
exactly as before: its errors raise, its ``fleet_model`` stays None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain_assets.config import (
    ConfigError,
    RetrainConfig,
    build_config,
    config_path,
    load_config,
    read_raw_config,
    with_fleet_model,
)

MODEL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""What a model's name (its file's stem) must fully match."""
MODEL_SUFFIXES = (".yaml", ".yml")
STATE_DIR = ".retrain"
"""The fleet's default state folder, under the fleet folder: workdirs and the MLflow store."""


@dataclass(frozen=True)
class BrokenModel:
    """A model file of a fleet folder that did not load."""

    name: str
    """The file's stem."""
    file: Path
    error: str
    """What is wrong, naming the file and the key (a ConfigError's text)."""


@dataclass(frozen=True)
class Fleet:
    """The models in force. ``models`` is sorted by name; for a single file (``folder`` None) its
    one key is the model's ``model.registered_name``."""

    folder: Path | None
    models: dict[str, RetrainConfig]
    broken: tuple[BrokenModel, ...] = ()

    @property
    def single(self) -> bool:
        """RETRAIN_CONFIG names one file: one model, no fleet names."""
        return self.folder is None

    def model(self, name: str | None) -> RetrainConfig:
        """The named model's config; ConfigError (listing the names) for an unknown or broken one.

        A single file's model answers to None or to its key; a fleet needs a name."""
        if self.single:
            return self._single_model(name)
        if name in self.models:
            return self.models[name]
        broken = [b for b in self.broken if b.name == name]
        if broken:
            raise ConfigError(f"model {name!r} is broken: {broken[0].error}")
        if name is None:
            raise ConfigError(f"a fleet folder needs a model name: {self._menu()}")
        raise ConfigError(f"no model named {name!r}: {self._menu()}")

    def _single_model(self, name: str | None) -> RetrainConfig:
        ((key, cfg),) = self.models.items()
        if name is None or name == key:
            return cfg
        raise ConfigError(
            f"{cfg.source} is a single-model config (model {key!r}), not a fleet folder: "
            f"there is no model {name!r}"
        )

    def _menu(self) -> str:
        """``fleet folder F has models a, b (broken: c (c.yaml))``."""
        text = f"fleet folder {self.folder} has models {', '.join(self.models) or '(none)'}"
        if self.broken:
            text += " (broken: " + ", ".join(f"{b.name} ({b.file.name})" for b in self.broken) + ")"
        return text


def shared_tracking_uri(folder: Path) -> str:
    """The fleet's default MLflow store: one SQLite file for every model (not created here)."""
    return f"sqlite:///{Path(folder) / STATE_DIR / 'mlflow.db'}"


def fleet_defaults(raw: Mapping[str, Any], name: str, folder: Path) -> dict[str, Any]:
    """A copy of a model file's raw mapping with the fleet's defaults where the file sets none.

    A ``model`` or ``mlflow`` that is not a mapping is left as it is, for validation to report."""
    out = dict(raw)
    out.setdefault("workdir", f"{STATE_DIR}/{name}")
    model = out.get("model")
    if isinstance(model, dict):
        out["model"] = {"registered_name": name, **model}
    mlflow = out.get("mlflow", {})
    if isinstance(mlflow, dict):
        defaults = {"tracking_uri": shared_tracking_uri(folder), "experiment_name": name}
        out["mlflow"] = {**defaults, **mlflow}
    return out


def model_files(folder: Path) -> list[Path]:
    """The model files directly in folder, sorted by file name (so by model name)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in MODEL_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def load_fleet(path: str | Path | None = None, *, require_landing: bool = True) -> Fleet:
    """The models of path (else $RETRAIN_CONFIG, else the demo's config): a folder of model files
    or one file. A folder's broken models are in ``Fleet.broken``; a single file's errors raise
    ConfigError as ``load_config`` does, as do a missing path and a folder with no model file."""
    target = Path(path).expanduser().resolve() if path is not None else config_path()
    if not target.is_dir():
        cfg = load_config(path, require_landing=require_landing)
        return Fleet(folder=None, models={cfg.model.registered_name: cfg})
    files = model_files(target)
    if not files:
        raise ConfigError(
            f"fleet folder {target} holds no model file (*.yaml or *.yml): write one file per "
            f"model, named after the model"
        )
    models: dict[str, RetrainConfig] = {}
    broken: list[BrokenModel] = []
    first_files: dict[str, Path] = {}
    for file in files:
        first_files.setdefault(file.stem, file)
    for file in files:
        try:
            _check_name(file, first_files[file.stem])
            cfg = _load_model(file, target, models, require_landing)
        except ConfigError as exc:
            broken.append(BrokenModel(name=file.stem, file=file, error=str(exc)))
        except (OSError, UnicodeDecodeError) as exc:  # unreadable: one model down, not all
            error = f"{file}: cannot be read as UTF-8 text: {exc}"
            broken.append(BrokenModel(name=file.stem, file=file, error=error))
        else:
            models[file.stem] = cfg
    return Fleet(folder=target, models=dict(sorted(models.items())), broken=tuple(broken))


def _load_model(
    file: Path, folder: Path, loaded: Mapping[str, RetrainConfig], require_landing: bool
) -> RetrainConfig:
    """One model file of the folder, checked against the models loaded before it."""
    name = file.stem
    raw = fleet_defaults(read_raw_config(file), name, folder)
    cfg = with_fleet_model(build_config(file, raw, require_landing=require_landing), name)
    clash = _collision(cfg, loaded)
    if clash:
        raise ConfigError(f"{file}: {clash}")
    return cfg


def _check_name(file: Path, first: Path) -> None:
    """ConfigError unless file's stem is a valid model name, first written by this file (of
    ``a.yaml`` and ``a.yml``, the first in sorted order names model a, loaded or broken)."""
    name = file.stem
    if not MODEL_NAME.fullmatch(name):
        raise ConfigError(
            f"{file}: model name {name!r} (the file's stem) must be a letter followed by letters, "
            f"digits or _ ({MODEL_NAME.pattern}): it prefixes the model's Dagster asset keys, "
            f"groups and jobs; rename the file"
        )
    if first != file:
        raise ConfigError(f"{file}: model name {name!r} is taken by {first}: one file per model")


def _nested(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def _collision(cfg: RetrainConfig, loaded: Mapping[str, RetrainConfig]) -> str | None:
    """What cfg shares with a model loaded before it, naming the key and that model's file;
    None when nothing. Tracking URIs are compared, never shown (they may hold credentials)."""
    for other in loaded.values():
        where = f"model {other.fleet_model!r} ({other.source})"
        if _nested(cfg.workdir, other.workdir):
            return (
                f"workdir {cfg.workdir} is, holds or lies in the workdir of {where}: every model "
                f"needs its own (set workdir, or drop it for the default {STATE_DIR}/<name>)"
            )
        if cfg.tracking_uri != other.tracking_uri:
            continue
        if cfg.model.registered_name == other.model.registered_name:
            return (
                f"model.registered_name {cfg.model.registered_name!r} is also that of {where} "
                f"in the same MLflow tracking store: every model needs its own"
            )
        if cfg.mlflow.experiment_name == other.mlflow.experiment_name:
            return (
                f"mlflow.experiment_name {cfg.mlflow.experiment_name!r} is also that of {where} "
                f"in the same MLflow tracking store: every model needs its own"
            )
    return None


def fleet_model_contract(contract: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A simulated feed's ``retrain.yaml`` mapping as the fleet file ``<name>.yaml`` beside the
    folder ``<name>/`` that holds its feed: landing_dir under ``<name>/``; no workdir, registered
    model or experiment (nor tracking URI), so the fleet's defaults name them after the model."""
    data = {**contract["data"], "landing_dir": f"{name}/{contract['data']['landing_dir']}"}
    model = {k: v for k, v in contract["model"].items() if k != "registered_name"}
    out = {k: v for k, v in contract.items() if k not in ("workdir", "mlflow")}
    return {**out, "data": data, "model": model}
