"""The code location: Definitions for the config in $RETRAIN_CONFIG (or the demo config)."""

from retrain_assets.config import load_config
from retrain_assets.defs import build_definitions

defs = build_definitions(load_config())
