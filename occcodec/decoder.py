"""Decoding: a ``.occ`` file back to voxels or a mesh, with numpy (and scikit-image) only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.errors import FormatError, UsageError
from occcodec.format import container, limits, network, v2
from occcodec.format.header import Header, parse_header
from occcodec.format.network import Weights
from occcodec.format.quant import dequantize, raw_size
from occcodec.fsutil import check_input_file, read_input_bytes
from occcodec.shapes import frame

MESH_OUTPUTS = (".ply", ".obj", ".stl", ".off", ".glb")
VOXEL_OUTPUTS = (".npz", ".binvox")


@dataclass
class Coded:
    """A read, verified file: header, float weights, and the container's bookkeeping."""

    header: Header
    weights: Weights
    file: container.OccFile
    #: A version-2 file's binary header (its weight scheme included); None for version 1.
    lean: v2.LeanHeader | None = None
    #: A version-2 file's bookkeeping (part sizes, frame precision); None for version 1.
    lean_info: v2.V2Info | None = None

    def logit_grid(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The network's logits at the voxel centres of a grid of ``shape`` (same box)."""
        return network.logit_grid(self.header.arch, self.weights, frame.axis_coords(shape))

    def occupancy_grid(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The decoded voxels of a grid of ``shape`` (same box), bool."""
        return network.occupancy_grid(self.header.arch, self.weights, frame.axis_coords(shape))


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read a ``.occ`` file with the house's one-line errors.

    Only regular files are read (a FIFO would block, ``/dev/zero`` never ends), and only up
    to the ``file`` limit, checked on the size before reading.

    Raises
    ------
    InputError
        As :func:`occcodec.fsutil.check_input_file`.
    LimitError
        Larger than the ``file`` limit.
    """
    p = check_input_file(path, "a .occ file")
    limits.check("file", p.stat().st_size, f"reading {str(p)!r}")
    data = read_input_bytes(p, "a .occ file")
    limits.check("file", len(data), f"reading {str(p)!r}")  # it grew while we looked
    return data


def load(data: bytes) -> Coded:
    """Parse, verify and dequantize a file held in memory, of format version 1 or 2.

    The version is told by the magic: v1 starts ``\\x89OCC\\r\\n``, v2 ``\\x89OC2``
    (a later digit is refused with a VersionError). Both give the same :class:`Coded`; for
    v2, ``header.raw`` is the META map with v1's key names, or ``{}`` for a stripped file.

    Raises
    ------
    FormatError
        Anything wrong with the container, header or weights.
    VersionError
        A file of a newer format version, or one using features this reader lacks.
    LimitError
        A file or network above :mod:`occcodec.format.limits`.
    """
    limits.check("file", len(data), "reading the .occ data")
    if v2.is_v2(data):
        return _load_v2(data)
    parsed: list[Header] = []

    def weights_size(raw: dict[str, Any]) -> int:
        parsed.append(parse_header(raw))
        return raw_size(parsed[0].arch, parsed[0].quant)

    occ = container.unpack(data, weights_size)
    header = parsed[0]
    try:
        weights = dequantize(occ.weights, header.arch, header.quant)
    except ValueError as exc:
        raise FormatError(f"weights do not match the architecture ({exc})") from None
    return Coded(header, weights, occ)


def _load_v2(data: bytes) -> Coded:
    lean, payload, meta, info = v2.unpack(data)
    weights = lean.weights.dequantize(payload, lean.arch)
    header = Header(lean.arch, lean.grid, lean.center, lean.scale, lean.fill,
                    str(lean.weights), meta or {})
    occ = container.OccFile(meta or {}, payload, info.version, dict(info.sections),
                            total_bytes=info.total_bytes)
    return Coded(header, weights, occ, lean, info)


def read(path: str | os.PathLike[str]) -> Coded:
    """Read and verify a ``.occ`` file."""
    try:
        return load(read_bytes(path))
    except FormatError as exc:
        raise type(exc)(f"{path}: {exc}") from None


#: Bytes per voxel a dense decode holds at once: float32 logits and the bool grid; for a
#: mesh, the padded float32 field and marching cubes' own per-voxel work arrays besides.
DENSE_VOXEL_BYTES = 5
DENSE_MESH_BYTES = 13


def decode_shape(coded: Coded, resolution: int | None = None,
                 bytes_per_voxel: int = DENSE_VOXEL_BYTES) -> tuple[int, int, int]:
    """The grid shape to decode: the encoded one, or scaled to ``resolution`` on its long side.

    The decode's size, work (parameters x voxels) and memory are checked against
    :mod:`occcodec.format.limits` here, before anything is allocated.

    Raises
    ------
    UsageError
        If ``resolution`` is outside 16..1024.
    LimitError
        If the grid, the work or the memory is above its limit.
    """
    if resolution is None:
        shape = coded.header.grid
    else:
        shape = network.scaled_shape(coded.header.grid, frame.check_decode_resolution(resolution))
    label = f"decoding {'x'.join(map(str, shape))} voxels"
    lower = "or decode at a lower --resolution"
    limits.check("grid", max(shape), label, lower)
    voxels = shape[0] * shape[1] * shape[2]
    limits.check("work", voxels * coded.header.arch.params, label, lower)
    limits.check("memory", voxels * bytes_per_voxel, label, lower)
    return shape


def voxels(coded: Coded, resolution: int | None = None) -> np.ndarray:
    """The decoded occupancy grid (bool): logit > 0, i.e. P > 0.5.

    Raises
    ------
    UsageError
        If ``resolution`` is outside the decode limits.
    """
    return coded.occupancy_grid(decode_shape(coded, resolution))


def mesh_arrays(coded: Coded, resolution: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The decoded surface in the input's world coordinates (:func:`meshing.grid_surface`).

    Returns (vertices (V,3) float64, faces (F,3) int64), outward-facing; both are empty
    when nothing is occupied.

    Raises
    ------
    UsageError
        If ``resolution`` is outside the decode limits.
    """
    from occcodec.shapes.meshing import grid_surface

    h = coded.header
    # the logit grid is passed as a temporary so that grid_surface can free it once padded
    shape = decode_shape(coded, resolution, DENSE_MESH_BYTES)
    with np.errstate(over="ignore", invalid="ignore"):  # a damaged frame is reported below
        verts, faces = grid_surface(coded.logit_grid(shape), h.center, h.scale, logits=True)
    if not np.isfinite(verts).all():
        raise FormatError("the header's centre and scale put vertices at infinity: "
                          "the file is damaged")
    return verts, faces


def write_output(coded: Coded, path: str | os.PathLike[str], resolution: int | None = None,
                 force: bool = False) -> dict[str, int]:
    """Decode to ``path``; the extension picks a mesh or a voxel format. Written atomically.

    Returns counts for the report (``voxels`` occupied, or ``vertices``/``faces``).

    Raises
    ------
    UsageError
        If the extension is not a supported output.
    OutputError
        If the path exists without ``force`` or its directory does not exist.
    """
    from occcodec.fsutil import atomic_output, check_output_path

    ext = Path(path).suffix.lower()
    if ext not in MESH_OUTPUTS + VOXEL_OUTPUTS:
        raise UsageError(
            f"cannot write {ext or 'a file without extension'!r}: use one of "
            f"{', '.join(MESH_OUTPUTS + VOXEL_OUTPUTS)}"
        )
    check_output_path(path, force)
    if ext in VOXEL_OUTPUTS:
        from occcodec.shapes import gridio

        grid = voxels(coded, resolution)
        gridio.write_voxels(path, grid, force=force)
        return {"voxels": int(grid.sum())}
    import trimesh

    verts, faces = mesh_arrays(coded, resolution)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    with atomic_output(path, force) as tmp:
        mesh.export(tmp, file_type=ext[1:])
    return {"vertices": len(verts), "faces": len(faces)}


def info_record(coded: Coded, path: str | None = None) -> dict[str, Any]:
    """What ``occcodec info --json`` prints: format version, sizes, network and the header
    as stored (byte strings shown as hex). Never evaluates the network."""
    raw = dict(coded.header.raw)
    if coded.lean_info is not None:  # v2: the binary fields, then META (if any)
        h = coded.header
        raw = {"grid": list(h.grid), "center": list(h.center), "scale": h.scale,
               "fill": h.fill, "quant": h.quant,
               "frame": "float64" if coded.lean_info.frame64 else "float32", **raw}
    src = raw.get("source")
    if isinstance(src, dict) and isinstance(src.get("sha256"), bytes):
        raw["source"] = {**src, "sha256": src["sha256"].hex()}
    return {
        "file": path,
        "format": f"{coded.file.version[0]}.{coded.file.version[1]}",
        "bytes": coded.file.total_bytes,
        "sections": coded.file.sections,
        "skipped_sections": coded.file.skipped,
        "arch": str(coded.header.arch),
        "params": coded.header.arch.params,
        "header": raw,
    }
