"""Where landing files are read and normalised outputs are written.

The landing folder belongs to the user and is only ever read. Everything the platform produces
goes under the workdir, written atomically so a killed run never leaves half a file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets.lib.data.landing_files import find_file, landing_day

if TYPE_CHECKING:  # pandas is imported where a frame is read: the code location loads without it
    import pandas as pd

KINDS = ("features", "labels")


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write next to the target and rename, so readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LandingStore(dg.ConfigurableResource):
    """The user's landing folder (read only) and the platform's workdir (normalised outputs)."""

    landing_dir: str
    """Folder holding reference.*, features/ and labels/."""
    workdir: str
    """Folder for the platform's own state."""

    def landing_file(self, kind: str, day: str | None = None) -> Path | None:
        """The landing file of a kind (``reference``, ``features``, ``labels``) and day, if any."""
        root = Path(self.landing_dir)
        if kind == "reference":
            return find_file(root, "reference")
        return find_file(root / kind, day or "")

    def batch_path(self, kind: str, day: str) -> Path:
        return Path(self.workdir) / "batches" / kind / f"{day}.parquet"

    def reference_path(self) -> Path:
        return Path(self.workdir) / "batches" / "reference.parquet"

    def batch_days(self, kind: str) -> list[str]:
        """Days with a normalised batch of this kind, oldest first."""
        folder = Path(self.workdir) / "batches" / kind
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet") if landing_day(p) is not None)

    def read_batch(self, kind: str, day: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.batch_path(kind, day))

    def read_reference(self) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(self.reference_path())

    def path_for(self, *parts: str) -> Path:
        """A path under the workdir (its folder is created)."""
        path = Path(self.workdir).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
