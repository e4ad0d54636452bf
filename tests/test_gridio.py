"""Voxel file I/O: binvox byte vectors, round trips, npz key rules, validation messages."""

from __future__ import annotations

import builtins
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from occcodec.errors import InputError, OutputError
from occcodec.fsutil import check_input_file
from occcodec.shapes.gridio import (
    decode_binvox,
    encode_binvox,
    pack_bits,
    read_binvox,
    read_npz,
    read_voxels,
    write_binvox,
    write_npz,
    write_voxels,
)

HEADER_234 = b"#binvox 1\ndim 2 3 4\ntranslate 0.0 0.0 0.0\nscale 4.0\ndata\n"


def _grid(shape: tuple[int, int, int], seed: int = 0, density: float = 0.3) -> np.ndarray:
    g = np.random.default_rng(seed).random(shape) < density
    g[0, 0, 0] = True  # never empty
    return g


# ------------------------------------------------------------------ binvox vectors


def test_binvox_vector_single_voxel_xzy_order() -> None:
    # dim 2 3 4 = (nx, ny, nz); voxel (x=1, y=2, z=3) sits at x*(nz*ny) + z*ny + y = 12+9+2 = 23.
    data = HEADER_234 + bytes(
        [
            0x00, 23,  # 23 empty voxels
            0x01, 1,  # voxel 23 occupied
        ]
    )  # fmt: skip
    header, grid = decode_binvox(data, check_dims=False)
    assert header.dims == (2, 3, 4)
    assert grid.shape == (2, 3, 4)
    assert list(zip(*np.nonzero(grid), strict=False)) == [(1, 2, 3)]
    expected = np.zeros((2, 3, 4), bool)
    expected[1, 2, 3] = True
    assert encode_binvox(expected) == data


def test_binvox_vector_y_runs_fastest() -> None:
    # Voxel (0, 1, 0) is stored second (flat index 1); (0, 0, 1) is stored at index ny = 3.
    data = HEADER_234 + bytes(
        [
            0x00, 1,  # (0,0,0)
            0x01, 1,  # (0,1,0)
            0x00, 1,  # (0,2,0)
            0x01, 1,  # (0,0,1)
            0x00, 20,  # the rest
        ]
    )  # fmt: skip
    _, grid = decode_binvox(data, check_dims=False)
    assert sorted(zip(*np.nonzero(grid), strict=False)) == [(0, 0, 1), (0, 1, 0)]
    assert encode_binvox(grid) == data


def test_binvox_long_runs_split_at_255() -> None:
    grid = np.ones((16, 16, 16), bool)
    body = encode_binvox(grid).split(b"data\n", 1)[1]
    # 4096 = 16 * 255 + 16
    assert body == bytes([1, 255] * 16 + [1, 16])


def test_binvox_agrees_with_trimesh() -> None:
    binvox = pytest.importorskip("trimesh.exchange.binvox")
    import io

    # trimesh reads dim as (nx, ny, nz) and the data as x, z, y too, but an assertion in its
    # loader rejects non-cubic grids, so the cross-check is cubic (random, so any axis swap shows).
    grid = _grid((16, 16, 16), seed=1)
    vox = binvox.load_binvox(io.BytesIO(encode_binvox(grid)))
    assert np.array_equal(np.asarray(vox.encoding.dense, bool), grid)
    theirs = binvox.export_binvox(vox)
    assert np.array_equal(decode_binvox(theirs)[1], grid)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        bool,
        st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12)),
        elements=st.booleans(),
    )
)
def test_binvox_encode_decode_roundtrip(grid: np.ndarray) -> None:
    assert np.array_equal(decode_binvox(encode_binvox(grid), check_dims=False)[1], grid)


@pytest.mark.parametrize("shape", [(16, 16, 16), (16, 20, 24), (40, 32, 48), (17, 16, 64)])
def test_binvox_file_roundtrip_noncubic(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    grid = _grid(shape)
    path = write_binvox(tmp_path / "g.binvox", grid)
    back = read_binvox(path)
    assert back.dtype == bool and back.shape == shape
    assert np.array_equal(back, grid)
    assert np.array_equal(read_voxels(path), grid)


# ------------------------------------------------------------------ binvox errors


def _binvox_file(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "bad.binvox"
    p.write_bytes(data)
    return p


def test_binvox_truncated(tmp_path: Path) -> None:
    data = encode_binvox(_grid((16, 16, 16)))
    with pytest.raises(InputError, match="truncated"):
        read_binvox(_binvox_file(tmp_path, data[:-2]))
    with pytest.raises(InputError, match="truncated"):
        read_binvox(_binvox_file(tmp_path, data[:-1]))  # odd byte count
    with pytest.raises(InputError, match="truncated"):
        read_binvox(_binvox_file(tmp_path, data[:20]))  # header cut before 'data'


def test_binvox_corrupt(tmp_path: Path) -> None:
    data = encode_binvox(_grid((16, 16, 16)))
    with pytest.raises(InputError, match="corrupt"):
        read_binvox(_binvox_file(tmp_path, data + bytes([1, 5])))
    with pytest.raises(InputError, match="not a binvox file"):
        read_binvox(_binvox_file(tmp_path, b"hello world\n" + data))
    with pytest.raises(InputError, match="corrupt"):
        read_binvox(_binvox_file(tmp_path, b"#binvox 1\ndim 16 x 16\ndata\n\x00\x10"))
    with pytest.raises(InputError, match="corrupt"):
        read_binvox(_binvox_file(tmp_path, b"#binvox 1\ndim 16 16\ndata\n\x00\x10"))
    with pytest.raises(InputError, match="corrupt"):
        read_binvox(_binvox_file(tmp_path, b"#binvox 1\n" + b"junk\n" * 40))


def test_binvox_dimension_out_of_range_refused_before_decoding(tmp_path: Path) -> None:
    data = b"#binvox 1\ndim 600 600 600\ndata\n\x01\xff"
    message = "grid dimension 600 is outside 16..512: resample the grid"
    with pytest.raises(InputError, match=message):
        read_binvox(_binvox_file(tmp_path, data))


def test_binvox_empty_grid(tmp_path: Path) -> None:
    p = write_binvox(tmp_path / "e.binvox", np.zeros((16, 16, 16), bool))
    with pytest.raises(InputError, match="empty"):
        read_binvox(p)


# ------------------------------------------------------------------ npz


def test_npz_writes_occupancy_key(tmp_path: Path) -> None:
    grid = _grid((16, 18, 20))
    p = write_npz(tmp_path / "g.npz", grid)
    with np.load(p) as npz:
        assert npz.files == ["occupancy"]
        assert npz["occupancy"].dtype == bool
        assert np.array_equal(npz["occupancy"], grid)
    with zipfile.ZipFile(p) as zf:  # compressed
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    assert np.array_equal(read_npz(p), grid)


def test_npz_key_rules(tmp_path: Path) -> None:
    grid = _grid((16, 16, 16))
    p = tmp_path / "several.npz"
    np.savez(p, other=np.zeros(3), occupancy=grid.astype(np.uint8), more=np.ones((16, 16, 16)))
    assert np.array_equal(read_npz(p), grid)
    p = tmp_path / "single.npz"
    np.savez(p, voxels=grid.astype(np.float32) * 7)  # nonzero = occupied
    assert np.array_equal(read_npz(p), grid)
    p = tmp_path / "ambiguous.npz"
    np.savez(p, a=grid, b=grid)
    with pytest.raises(InputError, match="'a', 'b' but none named 'occupancy'"):
        read_npz(p)
    p = tmp_path / "none.npz"
    np.savez(p)
    with pytest.raises(InputError, match="no array"):
        read_npz(p)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.ones((16, 16), bool), "expected a 3-D occupancy grid, got 2-D"),
        (np.ones((16, 16, 16, 2), bool), "got 4-D"),
        (np.ones((16, 600, 16), bool), "grid dimension 600 is outside 16..512: resample the grid"),
        (np.ones((8, 16, 16), bool), "grid dimension 8 is outside 16..512"),
        (np.zeros((16, 16, 16), np.uint8), "empty"),
        (np.full((16, 16, 16), "x"), "non-numeric"),
        (np.full((16, 16, 16), np.nan), "NaN"),
    ],
)
def test_npz_validation(tmp_path: Path, array: np.ndarray, message: str) -> None:
    p = tmp_path / "g.npz"
    np.savez(p, occupancy=array)
    with pytest.raises(InputError, match=message):
        read_npz(p)


def test_npz_corrupt_or_pickled(tmp_path: Path) -> None:
    p = tmp_path / "junk.npz"
    p.write_bytes(b"PK\x03\x04 this is not a zip file at all")
    with pytest.raises(InputError, match="not a readable .npz"):
        read_npz(p)
    p = tmp_path / "pickled.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = {"a": 1}
    np.savez(p, occupancy=obj)
    with pytest.raises(InputError, match="not a readable .npz"):
        read_npz(p)


# ------------------------------------------------------------------ writing, dispatch


def test_writers_refuse_overwrite_and_are_atomic(tmp_path: Path) -> None:
    grid = _grid((16, 16, 16))
    for name in ("g.npz", "g.binvox"):
        target = tmp_path / name
        write_voxels(target, grid)
        before = target.read_bytes()
        with pytest.raises(OutputError, match="--force"):
            write_voxels(target, ~grid)
        assert target.read_bytes() == before
        write_voxels(target, ~grid, force=True)
        assert np.array_equal(read_voxels(target), ~grid)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.binvox", "g.npz"]  # no temp files


def test_dispatch_unknown_extension(tmp_path: Path) -> None:
    p = tmp_path / "g.vox"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match=r"\.binvox, \.npz"):
        read_voxels(p)
    with pytest.raises(OutputError, match=r"\.binvox, \.npz"):
        write_voxels(tmp_path / "out.vox", _grid((16, 16, 16)))


def test_writer_rejects_non_3d(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3-D"):
        write_npz(tmp_path / "g.npz", np.ones((4, 4), bool))


def test_pack_bits() -> None:
    grid = _grid((16, 17, 18), seed=3)
    packed = pack_bits(grid)
    assert len(packed) == (16 * 17 * 18 + 7) // 8
    assert packed == np.packbits(grid.ravel()).tobytes()
    bits = np.unpackbits(np.frombuffer(packed, np.uint8))[: grid.size].astype(bool)
    assert np.array_equal(bits, grid.ravel())


# ------------------------------------------------------------------ input file checks


def test_check_input_file_messages(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        check_input_file(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="is a directory"):
        check_input_file(tmp_path)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(InputError, match=r"is empty \(0 bytes\)"):
        read_npz(tmp_path / "empty.npz")


def test_check_input_file_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "locked.binvox"
    p.write_bytes(b"#binvox 1\n")
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(file) == p:
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(InputError, match=r"cannot be read \(Permission denied\)"):
        read_binvox(p)
