"""Decoding: a ``.occ`` file back to voxels or a mesh, with numpy (and scikit-image) only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.errors import FormatError, UsageError
from occcodec.format import container, limits, network, v2
from occcodec.format.arch import Arch
from occcodec.format.header import Header, parse_header
from occcodec.format.network import Weights
from occcodec.format.quant import dequantize, raw_size
from occcodec.fsutil import check_input_file, read_input_bytes
from occcodec.shapes import frame

#: ``Header.quant`` of a grid-mode file.
GRID_SCHEME = "ctx-grid"
MESH_OUTPUTS = (".ply", ".obj", ".stl", ".off", ".glb")
VOXEL_OUTPUTS = (".npz", ".binvox")


@dataclass
class Coded:
    """A read, verified file: header, float weights, and the container's bookkeeping."""

    header: Header
    #: The float weights; empty for a grid-mode file (no network).
    weights: Weights
    file: container.OccFile
    #: A version-2 file's binary header (its weight scheme included); None for version 1.
    lean: v2.LeanHeader | None = None
    #: A version-2 file's bookkeeping (part sizes, frame precision); None for version 1.
    lean_info: v2.V2Info | None = None
    #: A grid-mode file's coded payload (decoded on first use by :meth:`stored_grid`).
    grid_payload: bytes | None = None
    _grid: np.ndarray | None = None

    @property
    def grid_mode(self) -> bool:
        """Whether the file holds a losslessly coded grid, not a network."""
        return self.header.arch is None

    @property
    def net(self) -> Arch:
        """The network's architecture.

        Raises
        ------
        UsageError
            For a grid-mode file, which has none.
        """
        if self.header.arch is None:
            raise UsageError("this file holds a losslessly coded grid, not a network")
        return self.header.arch

    @property
    def params(self) -> int:
        """The network's parameter count; 0 for a grid-mode file."""
        return 0 if self.header.arch is None else self.header.arch.params

    @property
    def label(self) -> str:
        """What the file holds, in words: the architecture, or ``ctx-grid``."""
        return GRID_SCHEME if self.header.arch is None else str(self.header.arch)

    def stored_grid(self) -> np.ndarray:
        """A grid-mode file's grid (bool, the header's shape), decoded once.

        Raises
        ------
        UsageError
            For a network file.
        LimitError
            If the grid is above the ``grid`` or ``memory`` limit (checked before decoding).
        FormatError
            If the payload is corrupt.
        """
        if self.grid_payload is None or self.lean is None:
            raise UsageError("this file holds a network, not a coded grid")
        if self._grid is None:
            from occcodec.coding import ctxgrid

            shape = self.header.grid
            label = f"decoding the {'x'.join(map(str, shape))} coded grid"
            limits.check("grid", max(shape), label)
            # the coder's padded uint8 copy and the bool result
            limits.check("memory", 2 * shape[0] * shape[1] * shape[2], label)
            self._grid = ctxgrid.decode_words(self.grid_payload, shape, self.lean.grid_model)
        return self._grid

    def logit_grid(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The network's logits at the voxel centres of a grid of ``shape`` (same box)."""
        return network.logit_grid(self.net, self.weights, frame.axis_coords(shape))

    def occupancy_grid(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The decoded voxels of a grid of ``shape`` (same box), bool."""
        if self.grid_mode:
            return resample(self.stored_grid(), shape)
        return network.occupancy_grid(self.net, self.weights, frame.axis_coords(shape))


def containing_voxel(p: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The voxel of a grid of ``shape`` that holds each normalised point of ``p`` (N, 3).

    Voxel ``i`` of an axis of ``n`` voxels (``m`` the longest axis) spans
    ``[(i - n/2) / (m/2), (i + 1 - n/2) / (m/2))``: ``i = floor(p m/2 + n/2)``, computed in
    float64 (``formats/occ-v2.md`` 6.3). Returns the (N, 3) indices and whether each point
    lies in the box (points outside it are empty).
    """
    dims = np.asarray(shape, dtype=np.float64)
    idx = np.floor(np.asarray(p, dtype=np.float64) * (dims.max() / 2) + dims / 2)
    inside = ((idx >= 0) & (idx < dims)).all(axis=1)
    return np.where(inside[:, None], idx, 0).astype(np.int64), inside


def resample(grid: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A stored grid on a grid of ``shape`` over the same box: each voxel takes the stored
    voxel that contains its centre, on the positive side of a face (``formats/occ-v2.md``
    6.3). In integers, exactly: voxel ``j`` of an axis of ``n'`` (longest ``m'``) takes
    stored voxel ``((2j + 1 - n') m + n m') // (2 m')`` of ``n`` (longest ``m``), clipped to
    ``0..n-1``. The same shape is the grid itself."""
    src = tuple(int(n) for n in grid.shape)
    dst = tuple(int(n) for n in shape)
    if dst == src:
        return np.asarray(grid, dtype=bool)
    m, m2 = max(src), max(dst)
    axes = []
    for n, n2 in zip(src, dst, strict=True):
        j = np.arange(n2, dtype=np.int64)
        idx = ((2 * j + 1 - n2) * m + n * m2) // (2 * m2)
        axes.append(np.clip(idx, 0, n - 1))
    return np.asarray(grid, dtype=bool)[np.ix_(*axes)]


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
        assert parsed[0].arch is not None  # v1 files always name a network
        return raw_size(parsed[0].arch, parsed[0].quant)

    occ = container.unpack(data, weights_size)
    header = parsed[0]
    assert header.arch is not None  # v1 files always name a network
    try:
        weights = dequantize(occ.weights, header.arch, header.quant)
    except ValueError as exc:
        raise FormatError(f"weights do not match the architecture ({exc})") from None
    return Coded(header, weights, occ)


def _load_v2(data: bytes) -> Coded:
    lean, payload, meta, info = v2.unpack(data)
    occ = container.OccFile(meta or {}, payload, info.version, dict(info.sections),
                            total_bytes=info.total_bytes)
    if lean.arch is None:
        header = Header(None, lean.grid, lean.center, lean.scale, lean.fill, GRID_SCHEME,
                        meta or {})
        return Coded(header, [], occ, lean, info, grid_payload=payload)
    weights = lean.weights.dequantize(payload, lean.arch)
    header = Header(lean.arch, lean.grid, lean.center, lean.scale, lean.fill,
                    str(lean.weights), meta or {})
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
#: Grids longer than this (voxels on the long side) decode with :mod:`occcodec.sparse`.
#: Measured on spot.obj's file, mesh, machine at load ~12: 128^3 dense 6.2 s, sparse 3.0 s;
#: 256^3 dense 39.6 s, sparse 7.9 s (same face counts). Sparse is faster at 128 too, but
#: up to 128 (every default encode) dense stays: its mesh is the reference the files' and
#: tests' figures were measured with, and sparse equals it voxel for voxel but its vertices
#: only to ~1e-4 voxel. Above, sparse never holds a dense float grid (1024^3 fits).
SPARSE_ABOVE = 128
#: Bytes a sparse mesh decode holds per voxel of the grid's bounding faces
#: (``2 (nx ny + ny nz + nx nz)``): a shape's surface is a few times that area, and each
#: surface voxel holds its share of a 9^3 float32 block, ~2 faces and ~1 vertex besides.
SPARSE_MESH_BYTES = 400
#: Components smaller than this fraction of the largest (volume for closed ones) are
#: dropped from decoded meshes by default (:func:`occcodec.sparse.drop_specks`).
SPECK_FRACTION = 1e-3


def _target_shape(coded: Coded, resolution: int | None) -> tuple[int, int, int]:
    if resolution is None:
        return coded.header.grid
    return network.scaled_shape(coded.header.grid, frame.check_decode_resolution(resolution))


def use_sparse(shape: tuple[int, int, int], sparse: bool | None = None) -> bool:
    """Whether a decode of ``shape`` takes the sparse path (``sparse=None``: by size)."""
    return max(shape) > SPARSE_ABOVE if sparse is None else bool(sparse)


def decode_shape(coded: Coded, resolution: int | None = None,
                 bytes_per_voxel: int = DENSE_VOXEL_BYTES, *,
                 sparse: bool = False) -> tuple[int, int, int]:
    """The grid shape to decode: the encoded one, or scaled to ``resolution`` on its long side.

    The decode's size, work (parameters x voxels) and memory are checked against
    :mod:`occcodec.format.limits` here, before anything is allocated. A sparse decode
    (``sparse=True``) evaluates a small part of the grid and checks its work as it goes
    (:mod:`occcodec.sparse`); here only its memory is checked: ``bytes_per_voxel`` per
    voxel (1 for a voxel grid), or with ``bytes_per_voxel=0`` :data:`SPARSE_MESH_BYTES`
    per voxel of the grid's faces.

    Raises
    ------
    UsageError
        If ``resolution`` is outside 16..1024.
    LimitError
        If the grid, the work or the memory is above its limit.
    """
    shape = _target_shape(coded, resolution)
    label = f"decoding {'x'.join(map(str, shape))} voxels"
    lower = "or decode at a lower --resolution"
    limits.check("grid", max(shape), label, lower)
    voxels = shape[0] * shape[1] * shape[2]
    if sparse:
        nx, ny, nz = shape
        faces = 2 * (nx * ny + ny * nz + nx * nz)
        need = voxels * bytes_per_voxel if bytes_per_voxel else faces * SPARSE_MESH_BYTES
        limits.check("memory", need, label, lower)
        return shape
    if not coded.grid_mode:
        limits.check("work", voxels * coded.net.params, label, lower)
    limits.check("memory", voxels * bytes_per_voxel, label, lower)
    return shape


def voxels(coded: Coded, resolution: int | None = None, *,
           sparse: bool | None = None) -> np.ndarray:
    """The decoded occupancy grid (bool): logit > 0, i.e. P > 0.5.

    ``sparse``: None picks the sparse path above :data:`SPARSE_ABOVE`; True or False force
    it (both give the same voxels on every shape measured, see :mod:`occcodec.sparse`).

    Raises
    ------
    UsageError
        If ``resolution`` is outside the decode limits.
    LimitError
        If the decode is above a limit (the sparse path checks its work as it goes).
    """
    from occcodec import sparse as sparse_mod

    if coded.grid_mode:  # a coded grid: the stored voxels, resampled (no network)
        return coded.occupancy_grid(decode_shape(coded, resolution, 1))
    if use_sparse(_target_shape(coded, resolution), sparse):
        shape = decode_shape(coded, resolution, 1, sparse=True)
        return sparse_mod.sparse_voxels(coded.net, coded.weights, shape)
    return coded.occupancy_grid(decode_shape(coded, resolution))


def mesh_arrays(coded: Coded, resolution: int | None = None, *, sparse: bool | None = None,
                drop_specks: float | None = None, refine_steps: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The decoded surface in the input's world coordinates (:func:`meshing.grid_surface`).

    Returns (vertices (V,3) float64, faces (F,3) int64), outward-facing; both are empty
    when nothing is occupied.

    Parameters
    ----------
    sparse
        None: the sparse path (:mod:`occcodec.sparse`) above :data:`SPARSE_ABOVE`; True or
        False force it.
    drop_specks
        Remove components smaller than this fraction of the largest
        (:func:`occcodec.sparse.drop_specks`); None or 0 keeps every component.
    refine_steps
        Steps that move a network's vertices to its own zero crossing on their edges
        (:func:`occcodec.sparse.refine_crossings`); None: ``sparse.REFINE_STEPS``; 0: marching
        cubes' linear interpolation alone. No effect on a grid-mode file.

    Raises
    ------
    UsageError
        If ``resolution`` is outside the decode limits or ``drop_specks`` outside [0, 1).
    LimitError
        If the decode is above a limit.
    """
    from occcodec import sparse as sparse_mod
    from occcodec.shapes.meshing import grid_surface

    steps = sparse_mod.REFINE_STEPS if refine_steps is None else int(refine_steps)
    if steps < 0:
        raise UsageError(f"refine steps must be 0 or more, got {steps}")
    h = coded.header
    with np.errstate(over="ignore", invalid="ignore"):  # a damaged frame is reported below
        if coded.grid_mode:  # marching cubes of the stored voxels, resampled
            shape = decode_shape(coded, resolution, DENSE_MESH_BYTES)
            verts, faces = grid_surface(resample(coded.stored_grid(), shape), h.center,
                                        h.scale)
        elif use_sparse(_target_shape(coded, resolution), sparse):
            shape = decode_shape(coded, resolution, 0, sparse=True)
            verts, faces = sparse_mod.sparse_mesh(coded.net, coded.weights, shape, h.center,
                                                  h.scale, steps)
        else:
            # the logit grid is a temporary so that grid_surface can free it once padded
            shape = decode_shape(coded, resolution, DENSE_MESH_BYTES)
            verts, faces = grid_surface(
                coded.logit_grid(shape), h.center, h.scale, logits=True,
                refine=lambda v, e: sparse_mod.refine_crossings(coded.net, coded.weights, v,
                                                                shape, steps, e))
    if not np.isfinite(verts).all():
        raise FormatError("the header's centre and scale put vertices at infinity: "
                          "the file is damaged")
    if drop_specks:
        verts, faces, _ = sparse_mod.drop_specks(verts, faces, drop_specks)
    return verts, faces


def write_output(coded: Coded, path: str | os.PathLike[str], resolution: int | None = None,
                 force: bool = False,
                 drop_specks: float | None = SPECK_FRACTION,
                 refine_steps: int | None = None) -> dict[str, int]:
    """Decode to ``path``; the extension picks a mesh or a voxel format. Written atomically.

    A mesh drops components smaller than ``drop_specks`` of the largest (default
    :data:`SPECK_FRACTION`; None or 0 keeps them all) and moves a network's vertices by
    ``refine_steps`` (:func:`mesh_arrays`). Returns counts for the report
    (``voxels`` occupied, or ``vertices``/``faces``).

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

    verts, faces = mesh_arrays(coded, resolution, drop_specks=drop_specks,
                               refine_steps=refine_steps)
    with atomic_output(path, force) as tmp:
        if ext == ".ply":
            write_ply(tmp, verts, faces)
        else:
            trimesh.Trimesh(verts, faces, process=False).export(tmp, file_type=ext[1:])
    return {"vertices": len(verts), "faces": len(faces)}


#: Rows per chunk of :func:`write_ply` (1 M faces: a 13 MB buffer).
_PLY_CHUNK = 1 << 20


def write_ply(path: str | os.PathLike[str], verts: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY, the layout trimesh writes (float32 ``x y z``, ``list uchar
    int vertex_indices``), written in chunks: trimesh's exporter builds the whole file's
    arrays first (5.0 s and 1 GB more for pinion's 11 M faces at 1024^3).

    Raises
    ------
    ValueError
        If a face index does not fit in int32.
    """
    if len(faces) and int(faces.max()) >= 2**31:
        raise ValueError("face indices beyond int32 do not fit PLY's int")
    header = ("ply\nformat binary_little_endian 1.0\ncomment occcodec\n"
              f"element vertex {len(verts)}\nproperty float x\nproperty float y\n"
              f"property float z\nelement face {len(faces)}\n"
              "property list uchar int vertex_indices\nend_header\n")
    row = np.dtype([("n", "u1"), ("v", "<i4", (3,))])
    with open(path, "wb") as out:
        out.write(header.encode("ascii"))
        for start in range(0, len(verts), _PLY_CHUNK):
            out.write(np.ascontiguousarray(verts[start : start + _PLY_CHUNK],
                                           dtype="<f4").tobytes())
        buf = np.empty(min(len(faces), _PLY_CHUNK), dtype=row)
        buf["n"] = 3
        for start in range(0, len(faces), _PLY_CHUNK):
            part = faces[start : start + _PLY_CHUNK]
            chunk = buf[: len(part)]
            chunk["v"] = part
            out.write(chunk.tobytes())


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
        "arch": coded.label,
        "params": coded.params,
        "header": raw,
    }
