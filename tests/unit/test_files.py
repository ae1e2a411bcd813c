"""Files the platform writes must appear whole or not at all, and a model's artifact hash must
never change for the same files: it is recorded on every registered version at registration, and a
model whose artifacts no longer match it is refused (so a changed hash function would lock out
every model registered before the change).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from retrain_assets.lib.files import (
    atomic_path,
    file_sha256,
    write_bytes,
    write_json,
    write_parquet,
    write_text,
)
from retrain_assets.lib.release.model_store import artifact_digest

# artifact_digest of _model_folder(), computed with the chunked sha256 loop it had before it used
# hashlib.file_digest: the same files must keep giving this value.
PINNED_DIGEST = "56a872e5b97c61dbfc77ab96bf86e40dfeede493ed0ad1a3a94bf853ccf6eb17"


def _model_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors:\n  sklearn:\n    serialization_format: skops\n")
    (root / "model.skops").write_bytes(bytes(range(256)) * 5000)  # more than one 1 MiB block
    (root / "sub" / "empty.txt").write_bytes(b"")
    (root / "sub" / "requirements.txt").write_text("scikit-learn==1.9.0\n")
    (root / "registered_model_meta").write_text("model_name: x\n")  # MLflow's own: not hashed
    return root


def test_the_artifact_digest_of_known_files_is_pinned(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    assert artifact_digest(folder) == PINNED_DIGEST
    (folder / "registered_model_meta").write_text("model_name: y\n")
    assert artifact_digest(folder) == PINNED_DIGEST
    (folder / "sub" / "empty.txt").write_bytes(b"x")
    assert artifact_digest(folder) != PINNED_DIGEST


def test_file_sha256_is_the_sha256_of_the_content(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_writers_round_trip_and_leave_no_temp_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2], "x": [0.5, None]})
    write_parquet(frame, tmp_path / "a" / "f.parquet")
    write_json({"when": pd.Timestamp("2024-01-01")}, tmp_path / "a" / "f.json")
    write_text("héllo\n", tmp_path / "a" / "f.txt")
    write_bytes(b"\x00\x01", tmp_path / "a" / "f.bin")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "f.parquet"), frame)
    assert json.loads((tmp_path / "a" / "f.json").read_text()) == {"when": "2024-01-01 00:00:00"}
    assert (tmp_path / "a" / "f.txt").read_text("utf-8") == "héllo\n"
    assert (tmp_path / "a" / "f.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "f.bin",
        "f.json",
        "f.parquet",
        "f.txt",
    ]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_written_file_has_the_mode_a_plain_write_gives(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    write_text("x", tmp_path / "atomic")
    mode = stat.S_IMODE((tmp_path / "atomic").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
