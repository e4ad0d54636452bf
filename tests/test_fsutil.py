"""fsutil: the one input-file check, the one atomic writer and the file hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from occcodec import decoder
from occcodec.errors import InputError, OutputError
from occcodec.fsutil import (
    atomic_open,
    atomic_write_bytes,
    read_input_bytes,
    sha256_file,
)
from occcodec.shapes.gridio import (
    VOXEL_EXTENSIONS,
    VOXEL_FORMATS,
    read_voxels,
    write_voxels,
)


def test_sha256_file_is_the_hash_of_the_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # over a megabyte: more than one read
    (tmp_path / "x.bin").write_bytes(data)
    assert sha256_file(tmp_path / "x.bin") == hashlib.sha256(data).hexdigest()


def test_read_input_bytes_and_the_decoder_share_the_check(tmp_path: Path) -> None:
    (tmp_path / "a.occ").write_bytes(b"abc")
    assert read_input_bytes(tmp_path / "a.occ") == b"abc"
    (tmp_path / "empty.occ").write_bytes(b"")
    for path, message in ((tmp_path / "missing.occ", "does not exist: check the path"),
                          (tmp_path, "is a directory: give a .occ file"),
                          (tmp_path / "empty.occ", r"is empty \(0 bytes\)")):
        with pytest.raises(InputError, match=message):
            decoder.read(path)


def test_atomic_open_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_open(target, force=True) as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(OutputError, match="already exists"):
        atomic_write_bytes(target, b"new")
    atomic_write_bytes(target, b"new", force=True)
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("ext", sorted(VOXEL_FORMATS))
def test_every_voxel_format_round_trips(tmp_path: Path, ext: str) -> None:
    assert VOXEL_EXTENSIONS == frozenset(VOXEL_FORMATS) == {".npz", ".binvox"}
    grid = np.zeros((16, 20, 18), dtype=bool)
    grid[3:9, 5:15, 2:4] = True
    write_voxels(tmp_path / f"g{ext.upper()}", grid)  # the extension is matched in any case
    assert np.array_equal(read_voxels(tmp_path / f"g{ext.upper()}"), grid)
