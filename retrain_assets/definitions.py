"""The code location: the config in $RETRAIN_CONFIG (or the demo config), and the Definitions of
each domain of the flow (ingest -> monitoring -> training -> release), merged."""

import warnings

import dagster as dg

from retrain_assets.config import RetrainConfig, load_config
from retrain_assets.ingest import build_ingest_defs
from retrain_assets.monitoring import build_monitoring_defs
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
        dg.Definitions(resources=build_resources(cfg)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads (`dg dev`, `dagster dev -m retrain_assets.definitions`, the daemon and
    every run worker): the config read from $RETRAIN_CONFIG, built on first use."""
    check_antlr()
    return build_definitions(load_config())
