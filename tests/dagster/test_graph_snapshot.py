"""The asset graph as a reviewer sees it: every asset key with its group, partitioning and deps,
every check with its blocking flag, every job with what it selects, every sensor and schedule with
what it targets. A change to the graph changes tests/dagster/snapshots/asset_graph.json, so it
shows up in review; regenerate with `UPDATE_SNAPSHOT=1 make test` (or this file alone)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from tests.conftest import Project

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def describe(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": type(partitions).__name__ if partitions else None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
        }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": {
            "blocking": graph.get(key).blocking,
            "partitioned": graph.get(key).partitions_def is not None,
        }
        for key in graph.asset_check_keys
    }
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        for job in defs.resolve_all_job_defs()
        if not job.name.startswith("__")
    }
    sensors = {
        s.name: {
            "jobs": sorted(t.job_name for t in s.targets),
            "default_status": s.default_status.value,
        }
        for s in (defs.resolve_sensor_def(x.name) for x in defs.sensors or [])
    }
    schedules = {
        s.name: {
            "job": s.job_name,
            "cron": s.cron_schedule,
            "default_status": s.default_status.value,
        }
        for s in (defs.resolve_schedule_def(x.name) for x in defs.schedules or [])
    }
    return {
        "assets": assets,
        "checks": dict(sorted(checks.items())),
        "jobs": jobs,
        "sensors": sensors,
        "schedules": schedules,
    }


def test_asset_graph_matches_the_snapshot(project: Project) -> None:
    actual = describe(project.defs)
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert actual == expected, "the asset graph changed: review it, then UPDATE_SNAPSHOT=1"
