"""The DVC md5 of a training set is its data version, and `cached()` must find that version's file
again (the reference profile is rebuilt from the champion's training set that way). DVC decides
where its cache lives, so the path comes from DVC's API, not from a copy of its folder layout: a
repo whose cache was moved with `dvc cache dir` must still resolve.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrain_assets.resources.dvc import DvcRepository


def _training_set(folder: Path) -> Path:
    path = folder / "training" / "set.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]}).to_parquet(path, index=False)
    return path


def test_an_added_file_is_found_again_by_its_md5(tmp_path: Path) -> None:
    repo = DvcRepository(root=str(tmp_path / "work"))
    source = _training_set(tmp_path / "work")
    md5 = repo.add(source)
    cached = repo.cached(md5)
    assert cached.is_file() and cached.read_bytes() == source.read_bytes()
    assert md5[2:] == cached.name and md5[:2] == cached.parent.name


def test_a_moved_cache_is_followed(tmp_path: Path) -> None:
    from dvc.repo import Repo

    root = tmp_path / "work"
    root.mkdir()
    Repo.init(str(root), no_scm=True)
    with Repo(str(root)) as dvc_repo, dvc_repo.config.edit() as conf:
        conf["cache"]["dir"] = str(tmp_path / "elsewhere")
    repo = DvcRepository(root=str(root))
    md5 = repo.add(_training_set(root))
    assert repo.cached(md5).is_relative_to(tmp_path / "elsewhere")


def test_an_unknown_version_names_the_md5_and_the_path(tmp_path: Path) -> None:
    repo = DvcRepository(root=str(tmp_path / "work"))
    with pytest.raises(FileNotFoundError, match=r"0123abcd.* no DVC repo at .*work"):
        repo.cached("0123abcd")
    repo.add(_training_set(tmp_path / "work"))
    missing = "f" * 32
    with pytest.raises(FileNotFoundError, match=f"{missing} is not in the DVC cache at .*ff/f+$"):
        repo.cached(missing)
