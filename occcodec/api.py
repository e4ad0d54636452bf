"""The Python API: :func:`encode` a shape to ``.occ`` bytes, :func:`decode` them to a shape.

>>> import occcodec
>>> data = occcodec.encode("part.stl", preset="fast", seed=0)   # doctest: +SKIP
>>> shape = occcodec.decode(data)                                # doctest: +SKIP
>>> shape.voxels().shape, shape.mesh().volume                    # doctest: +SKIP

The command line is a thin layer over these two functions. Errors are the
:class:`~occcodec.errors.OccError` family (``InputError``, ``UsageError``, ``FormatError``,
...), each with a one-line message that says what to do.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from occcodec.errors import InputError, UsageError

if TYPE_CHECKING:
    import trimesh

    from occcodec.decoder import Coded
    from occcodec.encoder.pipeline import EncodeResult
    from occcodec.format.header import Header
    from occcodec.progress import Progress

__all__ = ["DecodedShape", "decode", "encode", "encode_result"]

PathLike = str | os.PathLike[str]


def _digest_mesh(mesh: trimesh.Trimesh) -> bytes:
    """SHA-256 of a mesh's vertex and face arrays (little-endian float64 / int64)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.vertices, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(mesh.faces, dtype="<i8").tobytes())
    return h.digest()


def _digest_grid(grid: np.ndarray) -> bytes:
    """SHA-256 of a grid's shape (three little-endian u32) and its bits (C order, packed)."""
    h = hashlib.sha256()
    h.update(np.asarray(grid.shape, dtype="<u4").tobytes())
    h.update(np.packbits(grid, axis=None).tobytes())
    return h.digest()


def _as_mesh(source: Any) -> trimesh.Trimesh | None:
    """A ``trimesh.Trimesh`` (a ``Scene`` flattened in world space), or None if not a mesh."""
    import trimesh

    if isinstance(source, trimesh.Scene):
        parts = [g for g in source.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        if not parts:
            raise InputError("the trimesh.Scene holds no triangles: give a surface mesh")
        source = trimesh.util.concatenate(parts)
    if isinstance(source, trimesh.Trimesh):
        v = np.asarray(source.vertices, dtype=np.float64)
        f = np.asarray(source.faces, dtype=np.int64)
        if len(f) == 0:
            raise InputError("the trimesh.Trimesh has no faces: give a surface mesh")
        if not np.isfinite(v).all():
            raise InputError("the mesh has NaN or infinite vertex coordinates: repair it")
        return trimesh.Trimesh(vertices=v, faces=f, process=True, validate=False)
    return None


def encode_result(source: PathLike | np.ndarray | Any, *, preset: str = "default",
                  resolution: int = 128, fill: str = "auto", quant: str = "auto",
                  seed: int = 0, threads: int = 0, arch: str | None = None,
                  max_params: int | None = None, target_iou: float | None = None,
                  max_bytes: int | None = None, strip: bool = False, mode: str = "auto",
                  progress: Progress | None = None) -> EncodeResult:
    """As :func:`encode`, but returns the full :class:`~occcodec.encoder.pipeline.EncodeResult`
    (the bytes, the header, the network, the device, the seconds and the search's candidates).
    """
    from occcodec.encoder.pipeline import EncodeOptions, encode, encode_shape
    from occcodec.shapes import inputs

    opts = EncodeOptions(preset=preset, resolution=resolution, fill=fill, quant=quant,
                         seed=seed, threads=threads, arch=arch, max_params=max_params,
                         target_iou=target_iou, max_bytes=max_bytes, strip=strip, mode=mode)
    if isinstance(source, (str, os.PathLike)):
        return encode(source, opts, progress)
    if isinstance(source, np.ndarray):
        from occcodec.shapes.gridio import validate_grid

        grid = validate_grid(source, "the numpy grid")
        return encode_shape(inputs.shape_from_grid(grid), _digest_grid(grid), opts, progress)
    mesh = _as_mesh(source)
    if mesh is None:
        raise UsageError(f"cannot encode a {type(source).__name__}: give a file path, a "
                         "trimesh.Trimesh or Scene, or a 3-D numpy array")
    opts = opts.resolved()
    digest = _digest_mesh(mesh)  # of the mesh as given, before any face is turned
    inputs.orient_consistently(mesh)  # as load_mesh does (mesh is our copy)
    shape = inputs.shape_from_mesh(mesh, opts.resolution, opts.fill)
    return encode_shape(shape, digest, opts, progress)


def encode(source: PathLike | np.ndarray | Any, *, preset: str = "default",
           resolution: int = 128, fill: str = "auto", quant: str = "auto", seed: int = 0,
           threads: int = 0, arch: str | None = None, max_params: int | None = None,
           target_iou: float | None = None, max_bytes: int | None = None, strip: bool = False,
           mode: str = "auto", progress: Progress | None = None) -> bytes:
    """Compress a shape into ``.occ`` bytes.

    Parameters
    ----------
    source
        A mesh or voxel file path (``.obj .stl .ply .off .glb .gltf .npz .binvox``); a
        ``trimesh.Trimesh`` or ``trimesh.Scene`` (world coordinates, voxelized at
        ``resolution`` with ``fill``); or a 3-D numpy array, used as given (nonzero =
        occupied, 16..512 per axis).
    preset, resolution, fill, quant, seed, threads, arch, max_params, target_iou, max_bytes
    strip, mode
        As the ``occcodec encode`` options of the same names (see the README). The same
        source, options, seed and thread count give the same bytes. ``quant="auto"`` (the
        default) writes a low-bit (v2) file at the fewest bytes that reach ``target_iou``
        (the preset's when None), or the best IoU within ``max_bytes``; ``mode="auto"``
        writes the lossless grid instead (grid mode) when that file is no larger.
    progress
        An :class:`occcodec.progress.Progress` to report stages to (default: silent).

    Returns
    -------
    bytes
        The ``.occ`` file's contents (write them with any file API).

    Raises
    ------
    InputError
        The source cannot be read or holds no shape.
    UsageError
        An option is invalid, or no network fits ``max_bytes``.
    """
    return encode_result(source, preset=preset, resolution=resolution, fill=fill,
                         quant=quant, seed=seed, threads=threads, arch=arch,
                         max_params=max_params, target_iou=target_iou, max_bytes=max_bytes,
                         strip=strip, mode=mode, progress=progress).data


class DecodedShape:
    """A decoded ``.occ`` file: the network, its frame, and what can be computed from them.

    Coordinates are the input's world coordinates (the mesh's units; voxel index space for
    voxel inputs). Nothing is evaluated until asked for.
    """

    def __init__(self, coded: Coded, source: str | None = None) -> None:
        self._coded = coded
        self._source = source

    @property
    def header(self) -> Header:
        """The parsed header (grid, frame, fill, network, quantization, metrics, ...)."""
        return self._coded.header

    @property
    def coded(self) -> Coded:
        """The verified file: header, float weights and the container's bookkeeping."""
        return self._coded

    def info(self) -> dict[str, Any]:
        """What ``occcodec info --json`` prints: format version, sizes, network, header."""
        from occcodec.decoder import info_record

        return info_record(self._coded, self._source)

    def voxels(self, resolution: int | None = None) -> np.ndarray:
        """The decoded occupancy grid (bool), at the encoded size or ``resolution`` on the
        longest axis (16..1024)."""
        from occcodec import decoder

        return decoder.voxels(self._coded, resolution)

    def mesh(self, resolution: int | None = None,
             drop_specks: float | None = 1e-3,
             refine_steps: int | None = None) -> trimesh.Trimesh:
        """Marching cubes of the decoded field at P = 0.5, in world coordinates, outward
        normals; components smaller than ``drop_specks`` of the largest's volume are dropped
        (None or 0 keeps them all); a network's vertices are moved by ``refine_steps`` (None:
        the default, 3; 0: none) towards its own crossing on their edges. Empty (no faces)
        when nothing is occupied."""
        import trimesh

        from occcodec import decoder

        verts, faces = decoder.mesh_arrays(self._coded, resolution, drop_specks=drop_specks,
                                           refine_steps=refine_steps)
        return trimesh.Trimesh(verts, faces, process=False)

    def _normalised(self, points: Any) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise UsageError(f"points must be an (N, 3) array, got shape {p.shape}")
        if not np.isfinite(p).all():
            raise UsageError("points must be finite")
        h = self.header
        return (p - np.asarray(h.center, dtype=np.float64)) / h.scale

    def _logits(self, points: Any) -> np.ndarray:
        from occcodec.format import network

        normalised = self._normalised(points)
        out = np.empty(len(normalised), dtype=np.float32)
        step = network.CHUNK_POINTS
        for i in range(0, len(normalised), step):
            out[i:i + step] = network.logits(self._coded.net, self._coded.weights,
                                             normalised[i:i + step])
        return out

    def _stored(self, points: Any) -> np.ndarray:
        """A grid-mode file's voxel that contains each point (False outside the box)."""
        from occcodec.decoder import containing_voxel

        grid = self._coded.stored_grid()
        idx, inside = containing_voxel(self._normalised(points), grid.shape)
        return grid[tuple(idx.T)] & inside

    def probability(self, points: Any) -> np.ndarray:
        """P(occupied) at (N, 3) world points, float32, without decoding a grid (a
        grid-mode file: 1 or 0, its voxel that contains the point)."""
        if self._coded.grid_mode:
            return self._stored(points).astype(np.float32)
        z = self._logits(points)
        with np.errstate(over="ignore"):
            return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def occupancy(self, points: Any) -> np.ndarray:
        """Occupied (P > 0.5) at (N, 3) world points, bool, without decoding a grid.

        At voxel centres this agrees with :meth:`voxels` except where the logit is within a
        float32 rounding of 0 (the grid path sums the first layer in another order). A
        grid-mode file answers with the stored voxel that contains each point.
        """
        if self._coded.grid_mode:
            return self._stored(points)
        return self._logits(points) > 0.0

    def __repr__(self) -> str:
        h = self.header
        return (f"DecodedShape({self._coded.label}, grid {'x'.join(map(str, h.grid))}, "
                f"{self._coded.params} params, {h.quant})")


def decode(data: bytes | bytearray | memoryview | PathLike) -> DecodedShape:
    """Read ``.occ`` bytes, or a ``.occ`` file path, into a :class:`DecodedShape`.

    Raises
    ------
    InputError
        The path cannot be read.
    FormatError
        The bytes are not a valid ``.occ`` file (the message says what is wrong).
    """
    from occcodec import decoder

    if isinstance(data, (bytes, bytearray, memoryview)):
        return DecodedShape(decoder.load(bytes(data)))
    if isinstance(data, (str, os.PathLike)):
        return DecodedShape(decoder.read(data), str(Path(data)))
    raise UsageError(f"cannot decode a {type(data).__name__}: give bytes or a file path")
