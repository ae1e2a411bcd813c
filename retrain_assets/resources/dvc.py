"""The DVC repository that versions every training set.

The md5 DVC records for a training set is its data version: logged to MLflow and shown as asset
metadata, so any model can be traced to the exact rows it learnt from (`dvc status` works in the
workdir).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg


class DvcRepository(dg.ConfigurableResource):
    """A DVC repo (no git) rooted at the workdir."""

    root: str
    """The repo's root folder; created and `dvc init --no-scm`-ed on first use."""

    def add(self, path: Path) -> str:
        """`dvc add` one file under the root and return its md5."""
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        from dvc.repo import Repo

        root = Path(self.root)
        root.mkdir(parents=True, exist_ok=True)
        if not (root / ".dvc").is_dir():
            Repo.init(str(root), no_scm=True)
        with Repo(str(root)) as repo:
            stages = repo.add(str(Path(path).resolve()))
        md5 = stages[0].outs[0].hash_info.value
        if not md5:
            raise RuntimeError(f"dvc add {path} recorded no md5")
        return str(md5)

    def cached(self, md5: str) -> Path:
        """The file DVC keeps for a data version, located by DVC's own cache (content-addressed
        by md5, wherever the repo's ``cache.dir`` puts it)."""
        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        from dvc.repo import Repo

        root = Path(self.root)
        if not (root / ".dvc").is_dir():  # Repo() would look for a repo in the parent folders
            raise FileNotFoundError(
                f"data version {md5} is not in the DVC cache: no DVC repo at {root}"
            )
        with Repo(str(root)) as repo:
            path = Path(repo.cache.local.oid_to_path(md5))
        if not path.is_file():
            raise FileNotFoundError(f"data version {md5} is not in the DVC cache at {path}")
        return path
