"""Shape inputs: a mesh file or a voxel file in, a :class:`Shape` (occupancy grid + frame) out.

Meshes are read with trimesh (imported on first use, so importing this module stays cheap)
and voxelized by :mod:`occcodec.shapes.voxelize`; voxel files are read by
:mod:`occcodec.shapes.gridio`
and used as given. Every way an input can be unusable ends in an :class:`InputError` whose
one-line message says what to do.

World frames (the container stores ``center`` and ``scale``): the voxel -> normalised ->
world map is :mod:`occcodec.shapes.frame`'s.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from occcodec.errors import InputError
from occcodec.fsutil import check_input_file, sha256_file
from occcodec.shapes import frame
from occcodec.shapes.gridio import VOXEL_EXTENSIONS, read_voxels
from occcodec.shapes.voxelize import mesh_frame, voxelize, voxelize_in_frame

if TYPE_CHECKING:
    import trimesh

__all__ = [
    "MESH_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "VOXEL_EXTENSIONS",
    "Shape",
    "load_mesh",
    "load_shape",
    "orient_consistently",
    "sha256_file",
    "shape_from_grid",
    "shape_from_mesh",
]

MESH_EXTENSIONS = frozenset({".obj", ".stl", ".ply", ".off", ".glb", ".gltf"})
SUPPORTED_EXTENSIONS = MESH_EXTENSIONS | VOXEL_EXTENSIONS

#: Grid of the conservative voxelization kept for a mesh encoded above ``frame.MAX_DIM``.
_COARSE_DIM = 256

FillUsed = Literal["solid", "shell", "given"]
SourceKind = Literal["mesh", "voxels"]


@dataclass
class Shape:
    """An occupancy grid with the frame that places it in world coordinates.

    Attributes
    ----------
    occupancy
        (nx, ny, nz) bool grid, index order x, y, z.
    center, scale
        ``world = center + scale * p`` for the normalized coordinate ``p`` of a voxel centre.
    fill
        ``"solid"`` or ``"shell"`` for meshes, ``"given"`` for voxel inputs.
    source_kind
        ``"mesh"`` or ``"voxels"``.
    mesh
        The loaded mesh (world coordinates) for mesh inputs, else ``None``.
    fill_note
        One line saying which fill was used and why.
    grid_shape
        The grid a ``.occ`` header records (``--resolution`` for meshes); ``None`` means
        ``occupancy.shape``. Above ``frame.MAX_DIM`` a mesh's ``occupancy`` is the
        conservative voxelization of the same box at ``_COARSE_DIM`` (see
        :func:`shape_from_mesh`).
    """

    occupancy: np.ndarray
    center: tuple[float, float, float]
    scale: float
    fill: FillUsed
    source_kind: SourceKind
    mesh: trimesh.Trimesh | None = None
    fill_note: str = ""
    grid_shape: tuple[int, int, int] | None = None

    @property
    def grid_frame(self) -> frame.GridFrame:
        """The grid's shape, centre and scale: what a ``.occ`` header records."""
        nx, ny, nz = self.grid_shape or self.occupancy.shape
        return frame.GridFrame((nx, ny, nz), self.center, self.scale)

    def index_to_normalized(self, index: np.ndarray) -> np.ndarray:
        """Normalized coordinates (in (-1, 1)) of voxel centres given as (..., 3) indices."""
        return frame.index_to_normalized(index, self.occupancy.shape)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """World coordinates of voxel centres given as (..., 3) indices."""
        return self.grid_frame.index_to_world(index)


def _extension(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        shown = ext or "(none)"
        raise InputError(
            f"input {str(path)!r} has unsupported extension {shown}: use one of"
            f" {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
        )
    return ext


def load_mesh(path: str | os.PathLike[str]) -> trimesh.Trimesh:
    """Load a mesh file as one triangle mesh in world coordinates.

    Scenes (glTF/GLB with several nodes) are flattened: every mesh instance is moved by its
    scene-graph transform and all are concatenated. Vertices are merged by position, so
    watertightness is judged on geometry alone (not on texture seams); degenerate or
    duplicate faces and non-manifold edges are kept.

    Raises
    ------
    InputError
        If the path is missing, a directory, unreadable or empty; the extension is not a
        mesh format; the file does not parse; it holds no triangles (e.g. a point cloud);
        or a vertex coordinate is NaN or infinite.
    """
    p = check_input_file(path)
    ext = _extension(p)
    if ext not in MESH_EXTENSIONS:
        raise InputError(
            f"input {str(p)!r} is a voxel file, not a mesh: use one of"
            f" {', '.join(sorted(MESH_EXTENSIONS))}"
        )
    import trimesh

    where = f"input {str(p)!r}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # process=False: we merge vertices ourselves once, without visuals.
            scene = trimesh.load_scene(str(p), file_type=ext[1:], process=False)
            parts = scene.dump()
    except InputError:
        raise
    except Exception as exc:  # trimesh's loaders raise anything from ValueError to KeyError
        first_line = str(exc).splitlines()[0][:100] if str(exc) else ""
        detail = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
        raise InputError(
            f"{where} cannot be read as a {ext} mesh ({detail}): check the file is a valid {ext}"
        ) from exc

    meshes = [g for g in parts if isinstance(g, trimesh.Trimesh) and len(g.faces) > 0]
    if not meshes:
        if any(isinstance(g, trimesh.PointCloud) for g in parts):
            raise InputError(f"{where} is a point cloud (no triangles): give a surface mesh")
        raise InputError(
            f"{where} holds no triangles (is it really a {ext} mesh?): give a surface mesh"
        )
    vertices, faces = _concatenate(meshes)
    if not np.isfinite(vertices).all():
        raise InputError(f"{where} has NaN or infinite vertex coordinates: repair the mesh")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"{where} has faces that index missing vertices: repair the mesh")
    faces, dropped = drop_far_faces(vertices, faces)
    with warnings.catch_warnings():
        # merging a far-off vertex (1e30) overflows trimesh's integer rounding: a warning
        # about its cast, not ours to show (unused vertices are dropped by the merge)
        warnings.simplefilter("ignore", RuntimeWarning)
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=True, validate=False)
    if dropped:
        mesh.metadata[NOTE_KEY] = (
            f"dropped {dropped} face(s) reaching vertices more than {FAR_FACTOR:g} times the "
            "shape's size away (stray vertices would shrink the shape to a dot)")
    orient_consistently(mesh)
    return mesh


def orient_consistently(mesh: trimesh.Trimesh) -> int:
    """Turn faces, in place, so that each part's neighbouring faces agree and each closed
    part encloses a positive volume, when the mesh's orientation is inconsistent; returns
    how many faces were turned (0 when it was consistent: nothing is touched) and adds a
    line saying so to the mesh's note (``metadata[NOTE_KEY]``, which the encoder shows).

    The truth for a mesh is ``|winding number| > 1/2`` (:mod:`occcodec.shapes.inside`), which
    assumes neighbouring faces agree: with half of its faces turned, boeing.off's winding
    number marked 1.77 M centres of a 256^3 grid inside where its surface encloses 0.24 M
    (IoU 0.04 against the voxelizer's solid, 0.79 after; the voxelizer adds the surface
    layer of a thin shape), and took 68 s there against 0.1 s, since no ray settled a
    centre (2026-12-04). trimesh's ``fix_normals(multibody=True)``: a breadth-first walk
    over shared edges per connected part, then each closed part turned outward.
    """
    import trimesh

    if len(mesh.faces) == 0 or mesh.is_winding_consistent:
        return 0
    before = np.asarray(mesh.faces).copy()
    trimesh.repair.fix_normals(mesh, multibody=True)
    after = np.asarray(mesh.faces)
    if after.shape != before.shape:  # not expected from trimesh; keep the input as it was
        mesh.faces = before
        return 0
    flipped = int((after != before).any(axis=1).sum())
    if flipped:
        note = (f"turned {flipped:,} of {len(after):,} faces so that neighbouring faces agree "
                "(the inside test needs one orientation per part)")
        before_note = mesh.metadata.get(NOTE_KEY)
        mesh.metadata[NOTE_KEY] = f"{before_note}; {note}" if before_note else note
    return flipped


#: A vertex this many times the size of the shape's robust box (the 1st..99th percentile of
#: the used vertices, per axis) away from its centre is a stray: one vertex at 1e30 in an OBJ
#: made the frame 1e30 wide and the shape one voxel. Real parts are never this far out
#: (an antenna or a ground plane is a few times the body, not a thousand).
FAR_FACTOR = 1000.0
#: ``mesh.metadata`` key of a note on what loading changed (shown by the encoder).
NOTE_KEY = "occcodec_note"


def drop_far_faces(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, int]:
    """``faces`` without those reaching a stray far-off vertex (:data:`FAR_FACTOR`), and how
    many were dropped. Unused vertices need nothing: trimesh's merge drops them."""
    if len(faces) == 0:
        return faces, 0
    used = vertices[np.unique(faces)]
    lo, hi = np.percentile(used, [1.0, 99.0], axis=0)
    size = float((hi - lo).max())
    if not size > 0:
        return faces, 0
    far = np.abs(vertices - (lo + hi) / 2.0).max(axis=1) > FAR_FACTOR * size
    bad = far[faces].any(axis=1)
    if not bad.any() or bad.all():
        return faces, 0
    return faces[~bad], int(bad.sum())


def _concatenate(meshes: list[trimesh.Trimesh]) -> tuple[np.ndarray, np.ndarray]:
    """Stack vertices and offset faces; plain arrays, no visuals to reconcile."""
    vertices, faces, offset = [], [], 0
    for m in meshes:
        vertices.append(np.asarray(m.vertices, dtype=np.float64))
        faces.append(np.asarray(m.faces, dtype=np.int64) + offset)
        offset += len(m.vertices)
    return np.concatenate(vertices), np.concatenate(faces)


def load_shape(path: str | os.PathLike[str], resolution: int = 128, fill: str = "auto") -> Shape:
    """Load a mesh or voxel file as a :class:`Shape`.

    Meshes are voxelized on a ``resolution^3`` grid with ``fill`` (``auto``, ``solid`` or
    ``shell``). Voxel files (``.npz``, ``.binvox``) are used as given and ignore
    ``resolution`` and ``fill``; their frame is voxel index space (voxel ``i`` spans
    ``[i, i + 1]``): ``center = (nx/2, ny/2, nz/2)``, ``scale = max(nx, ny, nz) / 2``.

    Raises
    ------
    UsageError
        If ``resolution`` is outside ``frame.MIN_DIM..MAX_MESH_RESOLUTION`` or ``fill`` is
        unknown (checked
        for every input, so a typo is caught even where the value would be ignored).
    InputError
        As :func:`load_mesh`, :func:`occcodec.shapes.gridio.read_voxels` and
        :func:`occcodec.shapes.voxelize.voxelize`.
    """
    resolution = frame.check_encode_resolution(resolution)
    fill = frame.check_fill(fill)
    p = check_input_file(path)
    if _extension(p) in VOXEL_EXTENSIONS:
        return shape_from_grid(read_voxels(p))
    mesh = load_mesh(p)
    try:
        return shape_from_mesh(mesh, int(resolution), fill)
    except InputError as exc:
        raise InputError(f"input {str(p)!r}: {exc}") from exc


def shape_from_grid(grid: np.ndarray) -> Shape:
    """A voxel grid used as given, in voxel index space (see :func:`load_shape`)."""
    given = frame.voxel_space_frame(grid.shape)
    return Shape(
        occupancy=grid,
        center=given.center,
        scale=given.scale,
        fill="given",
        source_kind="voxels",
        mesh=None,
        fill_note="voxel input used as given",
    )


def shape_from_mesh(mesh: trimesh.Trimesh, resolution: int = 128, fill: str = "auto") -> Shape:
    """Voxelize a loaded mesh (world coordinates) on a ``resolution^3`` grid with ``fill``.

    The conservative voxelization decides ``auto``'s fill and is kept as ``occupancy`` for
    the tools that show the input; the encoder trains mesh inputs on the mesh itself
    (:mod:`occcodec.encoder.meshfit`). Above ``frame.MAX_DIM`` the frame is the one at
    ``resolution``, but ``auto`` is decided, and ``occupancy`` voxelized in that frame, at
    ``_COARSE_DIM``: two voxelizations at 512 took 28 s on a torus, at 256 about 4 s, and the
    grid only serves tools that show the input.

    Raises
    ------
    UsageError
        On a bad resolution or fill.
    InputError
        If the mesh cannot be voxelized (empty, flat, non-finite).
    """
    resolution = frame.check_encode_resolution(resolution)
    fill = frame.check_fill(fill)
    R = int(resolution)
    grid, center, scale, fill_used, note = voxelize(
        mesh, R if R <= frame.MAX_DIM else _COARSE_DIM, fill)
    grid_shape = None
    if R > frame.MAX_DIM:
        c, _, s = mesh_frame(np.asarray(mesh.vertices, dtype=np.float64), R)
        center, scale = (float(c[0]), float(c[1]), float(c[2])), float(s)
        grid = voxelize_in_frame(mesh, center, scale, _COARSE_DIM, fill_used)
        grid_shape = (R, R, R)
    loaded = getattr(mesh, "metadata", {}).get(NOTE_KEY)
    if loaded:
        note = f"{loaded}; {note}" if note else loaded
    return Shape(
        occupancy=grid,
        center=center,
        scale=scale,
        fill=fill_used,  # type: ignore[arg-type]
        source_kind="mesh",
        mesh=mesh,
        fill_note=note,
        grid_shape=grid_shape,
    )
