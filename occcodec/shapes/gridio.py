"""Voxel grid files: ``.npz`` and ``.binvox`` in and out, and grid validation.

A grid is a numpy bool array of shape ``(nx, ny, nz)`` indexed x, y, z (C order). This module
needs numpy only (no trimesh, no TensorFlow), so the decoder and the baselines can use it.

binvox (https://www.patrickmin.com/binvox/binvox.html)::

    #binvox 1\\n
    dim NX NY NZ\\n            (three positive integers)
    translate TX TY TZ\\n      (optional)
    scale S\\n                 (optional)
    data\\n
    (value, count) byte pairs, count 1..255, covering NX*NY*NZ voxels

The voxels are stored with y varying fastest, then z, then x: flat index
``x * (NZ * NY) + z * NY + y``. The spec only shows cubic grids; for non-cubic ones we read
``dim`` as (NX, NY, NZ), the same reading as trimesh's binvox loader, so files round-trip
with it.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occcodec.errors import InputError, LimitError, OutputError
from occcodec.format import limits
from occcodec.fsutil import (
    atomic_open,
    atomic_write_bytes,
    check_input_file,
    read_input_bytes,
)
from occcodec.shapes.frame import MAX_DIM, MIN_DIM

__all__ = [
    "NPZ_KEY",
    "VOXEL_EXTENSIONS",
    "VOXEL_FORMATS",
    "BinvoxHeader",
    "VoxelFormat",
    "decode_binvox",
    "encode_binvox",
    "pack_bits",
    "read_binvox",
    "read_npz",
    "read_voxels",
    "validate_grid",
    "write_binvox",
    "write_npz",
    "write_voxels",
]

#: The array name occcodec reads first from, and writes to, a ``.npz`` file.
NPZ_KEY = "occupancy"

BINVOX_MAGIC = b"#binvox"
#: binvox run lengths are one byte.
_BINVOX_MAX_RUN = 255
#: A header is a handful of short lines; anything longer is not a binvox file.
_BINVOX_MAX_HEADER_LINES = 32
#: Bytes read to find the header before the file's size is checked against its dims.
_BINVOX_HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class BinvoxHeader:
    """The parsed text header of a binvox file."""

    dims: tuple[int, int, int]
    translate: tuple[float, float, float]
    scale: float
    data_offset: int


def _check_dims(dims: tuple[int, ...], where: str) -> None:
    for d in dims:
        if not MIN_DIM <= d <= MAX_DIM:
            raise InputError(
                f"{where}: grid dimension {d} is outside {MIN_DIM}..{MAX_DIM}: resample the grid"
            )


def validate_grid(array: np.ndarray, where: str = "grid") -> np.ndarray:
    """Return ``array`` as a C-contiguous bool grid after checking it is usable.

    Nonzero values are occupied. ``where`` names the source in error messages.

    Raises
    ------
    InputError
        If the array is not 3-D, is not numeric, has NaN values, has a dimension outside
        ``MIN_DIM..MAX_DIM`` or has no occupied voxel.
    """
    if array.ndim != 3:
        raise InputError(
            f"{where}: expected a 3-D occupancy grid, got {array.ndim}-D shape {array.shape}"
        )
    if array.dtype.kind not in "biuf":
        raise InputError(f"{where}: grid has non-numeric dtype {array.dtype}: store 0/1 values")
    _check_dims(array.shape, where)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{where}: grid has NaN or infinite values: store 0/1 values")
    grid = np.ascontiguousarray(array != 0)
    if not grid.any():
        raise InputError(f"{where}: grid is empty (no occupied voxel): nothing to compress")
    return grid


def _as_bool3d(grid: np.ndarray) -> np.ndarray:
    """Writers take grids produced by code, so a bad one is a programming error."""
    arr = np.asarray(grid)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise ValueError(f"a voxel grid must be 3-D and non-empty, got shape {arr.shape}")
    return np.ascontiguousarray(arr != 0)


# --------------------------------------------------------------------------- npz


def read_npz(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an occupancy grid from a ``.npz`` file.

    The array named ``occupancy`` is used, or the only array in the file.

    Raises
    ------
    InputError
        If the file cannot be read as ``.npz``, holds no array, holds several arrays but
        none named ``occupancy``, or the grid fails :func:`validate_grid`.
    """
    p = check_input_file(path)
    try:
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.files)
            if NPZ_KEY in keys:
                key = NPZ_KEY
            elif len(keys) == 1:
                key = keys[0]
            elif not keys:
                raise InputError(f"{str(p)!r} holds no array: store the grid as '{NPZ_KEY}'")
            else:
                names = ", ".join(repr(k) for k in keys)
                raise InputError(
                    f"{str(p)!r} holds arrays {names} but none named '{NPZ_KEY}':"
                    f" save the grid under the key '{NPZ_KEY}'"
                )
            _check_npy_header(npz.zip, key, f"{str(p)!r}")  # before a byte of data is read
            array = npz[key]
    except (InputError, LimitError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(
            f"{str(p)!r} is not a readable .npz file ({type(exc).__name__}):"
            " save it with numpy.savez"
        ) from exc
    return validate_grid(array, f"{str(p)!r}")


def _check_npy_header(archive: zipfile.ZipFile, key: str, where: str) -> None:
    """Check the shape and dtype an ``.npz`` member declares, before numpy allocates it.

    numpy allocates what the ``.npy`` header declares and only then reads: a 300-byte file
    declaring 100000^3 float64 would ask for 8 PB (a MemoryError at best, the OOM killer at
    worst). The dimensions must be voxel-file dimensions (``MIN_DIM..MAX_DIM``) and the
    array plus its bool copy within the ``memory`` limit.

    Raises
    ------
    InputError
        If the member is not a 3-D numeric array of allowed dimensions.
    LimitError
        If loading it would need more than the ``memory`` limit.
    """
    # a member without the .npy suffix is read whole by numpy: it must be an array too
    member = f"{key}.npy" if f"{key}.npy" in archive.namelist() else key
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(fh, max_header_size=1 << 16)
    if dtype.hasobject:  # numpy would refuse it too, without allow_pickle
        raise InputError(f"{where} is not a readable .npz file (it holds pickled objects):"
                         " save the grid with numpy.savez")
    if len(shape) != 3:
        raise InputError(f"{where}: expected a 3-D occupancy grid, got {len(shape)}-D shape "
                         f"{tuple(shape)}")
    if dtype.kind not in "biuf":
        raise InputError(f"{where}: grid has non-numeric dtype {dtype}: store 0/1 values")
    _check_dims(tuple(shape), where)
    voxels = int(np.prod(shape, dtype=np.int64))
    dims = "x".join(map(str, shape))
    limits.check("memory", voxels * (dtype.itemsize + 1), f"loading the {dims} "
                 f"{dtype} grid of {where}")


def write_npz(path: str | os.PathLike[str], grid: np.ndarray, force: bool = False) -> Path:
    """Write ``grid`` to a compressed ``.npz`` under the key ``occupancy`` (bool), atomically.

    Raises
    ------
    OutputError
        If the target exists and ``force`` is false, or its directory is missing.
    """
    arr = _as_bool3d(grid)
    # np.savez_compressed appends ".npz" to names lacking it: give it an open file instead.
    with atomic_open(path, force) as fh:
        np.savez_compressed(fh, **{NPZ_KEY: arr})  # type: ignore[arg-type]
    return Path(path)


# ------------------------------------------------------------------------ binvox


def _parse_binvox_header(data: bytes, where: str) -> BinvoxHeader:
    if not data.startswith(BINVOX_MAGIC):
        raise InputError(f"{where}: not a binvox file (no '#binvox' header)")
    pos = 0
    fields: dict[str, list[str]] = {}
    for _ in range(_BINVOX_MAX_HEADER_LINES):
        end = data.find(b"\n", pos)
        if end < 0:
            raise InputError(f"{where}: binvox header is truncated (no 'data' line)")
        line = data[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        if line.startswith("#") or not line:
            continue
        words = line.split()
        if words[0] == "data":
            break
        fields[words[0]] = words[1:]
    else:
        raise InputError(f"{where}: binvox header is corrupt (no 'data' line)")
    try:
        dims = tuple(int(v) for v in fields["dim"])
        translate = tuple(float(v) for v in fields.get("translate", ["0", "0", "0"]))
        scale = float(fields.get("scale", ["1"])[0])
    except (KeyError, ValueError, IndexError) as exc:
        raise InputError(f"{where}: binvox header is corrupt (bad or missing 'dim')") from exc
    if len(dims) != 3 or len(translate) != 3 or min(dims) < 1:
        raise InputError(f"{where}: binvox header is corrupt (needs 'dim NX NY NZ')")
    return BinvoxHeader(
        dims=dims, translate=translate, scale=scale, data_offset=pos  # type: ignore[arg-type]
    )


def decode_binvox(
    data: bytes, where: str = "binvox data", check_dims: bool = True
) -> tuple[BinvoxHeader, np.ndarray]:
    """Parse binvox bytes into its header and an (nx, ny, nz) bool grid.

    ``check_dims`` refuses dimensions outside ``MIN_DIM..MAX_DIM`` before decoding, so a
    corrupt header cannot make us allocate a huge array.

    Raises
    ------
    InputError
        If the header is missing or corrupt, or the run-length data does not cover exactly
        the ``dim`` voxels (truncated or corrupt file).
    """
    header = _parse_binvox_header(data, where)
    if check_dims:
        _check_dims(header.dims, where)
    nx, ny, nz = header.dims
    rle = np.frombuffer(data, dtype=np.uint8, offset=header.data_offset)
    if rle.size % 2:
        raise InputError(f"{where}: binvox data is truncated (odd number of bytes)")
    values, counts = rle[0::2], rle[1::2].astype(np.int64)
    total = int(counts.sum())
    if total != nx * ny * nz:
        state = "truncated" if total < nx * ny * nz else "corrupt"
        raise InputError(
            f"{where}: binvox data is {state} ({total} voxels for dim {nx} {ny} {nz})"
        )
    flat = np.repeat(values != 0, counts)
    # Stored order is x, z, y (y fastest); bring it to x, y, z.
    grid = flat.reshape(nx, nz, ny).transpose(0, 2, 1)
    return header, np.ascontiguousarray(grid)


def encode_binvox(
    grid: np.ndarray,
    translate: tuple[float, float, float] = (0.0, 0.0, 0.0),
    scale: float | None = None,
) -> bytes:
    """Encode a grid as binvox bytes.

    The default ``translate`` 0 and ``scale`` = the largest dimension place voxel ``i`` on
    ``[i, i+1]``, which is occcodec's world frame for voxel inputs.
    """
    arr = _as_bool3d(grid)
    nx, ny, nz = arr.shape
    if scale is None:
        scale = float(max(arr.shape))
    flat = arr.transpose(0, 2, 1).ravel().astype(np.uint8)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    # Runs longer than 255 are split into full 255-runs plus a remainder.
    pieces = (lengths + _BINVOX_MAX_RUN - 1) // _BINVOX_MAX_RUN
    counts = np.full(int(pieces.sum()), _BINVOX_MAX_RUN, dtype=np.int64)
    last = np.cumsum(pieces) - 1
    counts[last] = lengths - (pieces - 1) * _BINVOX_MAX_RUN
    values = np.repeat(flat[starts], pieces)
    body = np.empty(2 * counts.size, dtype=np.uint8)
    body[0::2] = values
    body[1::2] = counts
    tx, ty, tz = (float(v) for v in translate)
    header = (
        f"#binvox 1\ndim {nx} {ny} {nz}\ntranslate {tx!r} {ty!r} {tz!r}\n"
        f"scale {float(scale)!r}\ndata\n"
    )
    return header.encode("ascii") + body.tobytes()


def read_binvox(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``.binvox`` file into a validated (nx, ny, nz) bool grid.

    Raises
    ------
    InputError
        As :func:`occcodec.fsutil.check_input_file`, :func:`decode_binvox` and
        :func:`validate_grid`.
    """
    where = f"{str(Path(path))!r}"
    p = check_input_file(path)
    # The header first: its dims bound the file (at most 2 bytes of run-length data per
    # voxel), so a huge or endless file is refused before it is read into memory.
    with open(p, "rb") as fh:
        head = fh.read(_BINVOX_HEADER_BYTES)
    header = _parse_binvox_header(head, where)
    _check_dims(header.dims, where)
    most = header.data_offset + 2 * int(np.prod(header.dims, dtype=np.int64))
    if p.stat().st_size > most:
        raise InputError(f"{where}: binvox data is corrupt ({p.stat().st_size:,} bytes, more "
                         f"than dim {' '.join(map(str, header.dims))} can hold)")
    _, grid = decode_binvox(read_input_bytes(p), where)
    return validate_grid(grid, where)


def write_binvox(path: str | os.PathLike[str], grid: np.ndarray, force: bool = False) -> Path:
    """Write ``grid`` as a ``.binvox`` file (non-cubic allowed), atomically.

    Raises
    ------
    OutputError
        If the target exists and ``force`` is false, or its directory is missing.
    """
    return atomic_write_bytes(path, encode_binvox(grid), force)


# ------------------------------------------------------------------------ dispatch


@dataclass(frozen=True)
class VoxelFormat:
    """A voxel file format: how to read one (validated grid out) and write one (atomically)."""

    read: Callable[[str | os.PathLike[str]], np.ndarray]
    write: Callable[[str | os.PathLike[str], np.ndarray, bool], Path]


#: The voxel file formats by (lower-case) extension. Adding a format is adding a row.
VOXEL_FORMATS: dict[str, VoxelFormat] = {
    ".npz": VoxelFormat(read_npz, write_npz),
    ".binvox": VoxelFormat(read_binvox, write_binvox),
}

VOXEL_EXTENSIONS = frozenset(VOXEL_FORMATS)


def _format_of(path: str | os.PathLike[str]) -> VoxelFormat | None:
    return VOXEL_FORMATS.get(Path(path).suffix.lower())


def _listed() -> str:
    return ", ".join(sorted(VOXEL_FORMATS))


def read_voxels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a voxel grid file, choosing the reader by extension (:data:`VOXEL_FORMATS`).

    Raises
    ------
    InputError
        If the extension is not a voxel format, or as the chosen reader.
    """
    fmt = _format_of(path)
    if fmt is None:
        raise InputError(f"input {str(path)!r} is not a voxel file: use one of {_listed()}")
    return fmt.read(path)


def write_voxels(path: str | os.PathLike[str], grid: np.ndarray, force: bool = False) -> Path:
    """Write a voxel grid, choosing the writer by extension (:data:`VOXEL_FORMATS`).

    Raises
    ------
    OutputError
        If the extension is not a voxel format, or as the chosen writer.
    """
    fmt = _format_of(path)
    if fmt is None:
        raise OutputError(f"output {str(path)!r} is not a voxel file name: use one of {_listed()}")
    return fmt.write(path, grid, force)


def pack_bits(grid: np.ndarray) -> bytes:
    """Pack the C-order flattened bool grid into bytes, 8 voxels a byte (MSB first)."""
    return np.packbits(np.asarray(grid, dtype=bool).ravel(order="C")).tobytes()
