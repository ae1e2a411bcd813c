"""Where landing files are read and normalised outputs are written.

The landing folder belongs to the user and is only ever read. Everything the platform produces
goes under the workdir, written atomically so a killed run never leaves half a file behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from retrain_assets import names
from retrain_assets.lib.data.landing_files import find_file, landing_day

if TYPE_CHECKING:  # pandas is imported where a frame is read: the code location loads without it
    import pandas as pd

BATCH_ASSETS = {"features": names.FEATURE_BATCH, "labels": names.LABEL_BATCH}


class MissingInput(dg.Failure):
    """A step needs an asset that was never materialised; says which and how to produce it."""

    def __init__(self, asset: str, path: Path, how: str) -> None:
        super().__init__(
            description=f"{asset} has not been materialised yet ({path} does not exist). {how}",
            metadata={"missing_asset": asset, "expected_file": dg.MetadataValue.path(str(path))},
            allow_retries=False,
        )


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

        path = self.batch_path(kind, day)
        if not path.is_file():
            raise MissingInput(
                f"{BATCH_ASSETS[kind]}[{day}]",
                path,
                f"Land {kind}/{day}.parquet (or .csv) under {self.landing_dir} and let "
                f"{names.LANDING_SENSOR} ingest it, or materialise that partition.",
            )
        return pd.read_parquet(path)

    def read_reference(self) -> pd.DataFrame:
        import pandas as pd

        path = self.reference_path()
        if not path.is_file():
            raise MissingInput(
                names.REFERENCE_DATASET,
                path,
                f"Put reference.parquet (or .csv) under {self.landing_dir} and let "
                f"{names.LANDING_SENSOR} ingest it, or run `{names.REFERENCE_JOB}` "
                f"(dagster job execute -j {names.REFERENCE_JOB}) before this job.",
            )
        return pd.read_parquet(path)

    def path_for(self, *parts: str) -> Path:
        """A path under the workdir (its folder is created)."""
        path = Path(self.workdir).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
