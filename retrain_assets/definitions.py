"""The code location: the config in $RETRAIN_CONFIG (or the demo config), and the Definitions of
each domain of the flow (ingest -> monitoring -> training -> release), merged.

$RETRAIN_CONFIG may also name a folder of model files (retrain_assets/fleet.py): each model's
Definitions are built the same way under its own names (retrain_assets/scope.py) and merged. A
model whose file does not load is left out, logged, and shown in the UI as an asset
`<model>/config_error` (group `fleet_config_errors`) whose description is the error; the others
load.
"""

import logging
import warnings

import dagster as dg

from retrain_assets import names
from retrain_assets.alerts import build_alert_defs
from retrain_assets.config import RetrainConfig
from retrain_assets.fleet import BrokenModel, Fleet, load_fleet
from retrain_assets.ingest import build_ingest_defs
from retrain_assets.monitoring import build_monitoring_defs
from retrain_assets.overview import build_overview_defs
from retrain_assets.preflight import check_antlr
from retrain_assets.release import build_release_defs
from retrain_assets.resources import build_resources
from retrain_assets.training import build_training_defs

# Partitioned asset-check specs are a "preview" API in Dagster 1.13 and dagster-mlflow is "beta";
# both are used on purpose, and the warnings would repeat in every process's log.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def daily_partitions(cfg: RetrainConfig) -> dg.DailyPartitionsDefinition:
    # end_offset=1: a batch that lands today is processed today.
    return dg.DailyPartitionsDefinition(start_date=cfg.data.start_date.isoformat(), end_offset=1)


def build_definitions(cfg: RetrainConfig) -> dg.Definitions:
    daily = daily_partitions(cfg)
    return dg.Definitions.merge(
        build_ingest_defs(cfg, daily),
        build_monitoring_defs(cfg, daily),
        build_training_defs(cfg),
        build_release_defs(cfg),
        build_alert_defs(cfg),
        dg.Definitions(resources=build_resources(cfg)),
    )


def broken_model_spec(broken: BrokenModel) -> dg.AssetSpec:
    """What the UI shows of a model whose file did not load: an asset with the error."""
    return dg.AssetSpec(
        key=[broken.name, names.CONFIG_ERROR],
        group_name=names.CONFIG_ERRORS_GROUP,
        description=f"Model {broken.name} is not loaded: its config file is broken.\n\n"
        f"```\n{broken.error}\n```",
        metadata={"file": dg.MetadataValue.path(str(broken.file)), "error": broken.error},
        kinds={"yaml"},
    )


def build_fleet_definitions(fleet: Fleet) -> dg.Definitions:
    """Every loaded model's Definitions and the fleet's overview (fleet_status), merged; a single
    file: exactly build_definitions."""
    if fleet.single:
        [cfg] = fleet.models.values()
        return build_definitions(cfg)
    log = logging.getLogger(__name__)
    for broken in fleet.broken:
        log.warning("model %s is not loaded: %s", broken.name, broken.error)
    return dg.Definitions.merge(
        *(build_definitions(cfg) for cfg in fleet.models.values()),
        dg.Definitions(assets=[broken_model_spec(b) for b in fleet.broken]),
        build_overview_defs(fleet),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads (`dg dev`, `dagster dev -m retrain_assets.definitions`, the daemon and
    every run worker): the config (or folder of model configs) read from $RETRAIN_CONFIG, built
    on first use."""
    check_antlr()
    return build_fleet_definitions(load_fleet())
