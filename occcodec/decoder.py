"""Decoding: a ``.occ`` file back to voxels or a mesh, with numpy (and scikit-image) only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from occcodec.errors import FormatError, UsageError
from occcodec.format import container, network
from occcodec.format.header import Header, parse_header
from occcodec.format.network import Weights
from occcodec.format.quant import dequantize
from occcodec.fsutil import read_input_bytes
from occcodec.shapes import frame

MESH_OUTPUTS = (".ply", ".obj", ".stl", ".off", ".glb")
VOXEL_OUTPUTS = (".npz", ".binvox")


@dataclass
class Coded:
    """A read, verified file: header, float weights, and the container's bookkeeping."""

    header: Header
    weights: Weights
    file: container.OccFile

    def logit_grid(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The network's logits at the voxel centres of a grid of ``shape`` (same box)."""
        return network.logit_grid(self.header.arch, self.weights, frame.axis_coords(shape))

    def occupancy_grid(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The decoded voxels of a grid of ``shape`` (same box), bool."""
        return network.occupancy_grid(self.header.arch, self.weights, frame.axis_coords(shape))


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Read an input file with the house's one-line errors.

    Raises
    ------
    InputError
        As :func:`occcodec.fsutil.check_input_file`.
    """
    return read_input_bytes(path, "a .occ file")


def load(data: bytes) -> Coded:
    """Parse, verify and dequantize a container held in memory.

    Raises
    ------
    FormatError
        Anything wrong with the container, header or weights.
    """
    occ = container.unpack(data)
    header = parse_header(occ.header)
    try:
        weights = dequantize(occ.weights, header.arch, header.quant)
    except ValueError as exc:
        raise FormatError(f"weights do not match the architecture ({exc})") from None
    return Coded(header, weights, occ)


def read(path: str | os.PathLike[str]) -> Coded:
    """Read and verify a ``.occ`` file."""
    try:
        return load(read_bytes(path))
    except FormatError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def decode_shape(coded: Coded, resolution: int | None = None) -> tuple[int, int, int]:
    """The grid shape to decode: the encoded one, or scaled to ``resolution`` on its long side."""
    if resolution is None:
        return coded.header.grid
    return network.scaled_shape(coded.header.grid, frame.check_decode_resolution(resolution))


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
    return grid_surface(coded.logit_grid(decode_shape(coded, resolution)), h.center, h.scale,
                        logits=True)


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
