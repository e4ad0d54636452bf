"""``occcodec eval``: how close a decoded ``.occ`` is to its original, in voxels and on the surface.

The reference (the original mesh or voxel grid) is voxelized exactly as the encoder did it:
the resolution and fill recorded in the file's header, and the frame (centre, scale) checked
against the header's, so that the grids compared are the encoded grid and the decoded grid,
voxel for voxel. With a ``resolution`` the grids are instead the file decoded at that
resolution and the mesh's winding-number inside at that grid's voxel centres
(:func:`truth_grid`), and the decoded mesh is meshed at that resolution; the record's
``rule`` says which. The metrics are those of :mod:`occcodec.tools.metrics`, whose docstrings
define them exactly:

* voxel IoU, accuracy, precision, recall on the encoded grid
  (:func:`~occcodec.tools.metrics.confusion`);
* the Chamfer distance between the boundary voxels of both grids
  (:func:`~occcodec.tools.metrics.voxel_chamfer`): the squared, paper-style number in normalised
  units and the mean distance in voxel edges;
* the Chamfer distance, Hausdorff 95/100 and normal consistency between the decoded mesh
  (marching cubes of the network, as ``occcodec decode`` writes it) and the reference
  surface: from points sampled uniformly by area on each to the other's triangles, in the
  reference's units (:func:`~occcodec.tools.metrics.surface_distances`). A voxel-grid
  reference has no surface of its own: its grid is meshed by marching cubes in the same world
  frame, and the report says so.

:func:`compare` does the measuring for ``eval`` and ``bench`` alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from occcodec.errors import InputError

__all__ = [
    "Reference",
    "compare",
    "evaluate",
    "grid_mesh",
    "load_reference",
    "truth_grid",
    "voxel_edge",
]

#: Points sampled on each surface for the surface Chamfer distance.
SURFACE_POINTS = 100_000
#: Relative tolerance on the frame (centre, scale) of a re-voxelized reference: the same
#: float64 arithmetic on the same vertices agrees far closer than this.
FRAME_RTOL = 1e-9
#: The tolerance for a reference saved with float32 vertices (binary STL, most PLY and GLB
#: files): rounding a vertex to float32 moves it by up to 2^-24 (6e-8) of its magnitude, so
#: the bounding box's centre and half-size move by that much of the largest coordinate. 1e-6
#: is 16 such steps. Measured (meshes re-saved by trimesh as binary STL, PLY and GLB): the
#: frame moved by 1.4e-9 of the scale for samples/mug.obj, 4.1e-9 for 2CylinderEngine.glb and
#: 2.3e-8 for ShapeNet's 76277.obj; another shape differs by far more (a mesh shifted by a
#: tenth of a voxel at 512^3 differs by 3.9e-4).
FRAME_RTOL_FLOAT32 = 1e-6


@dataclass
class Reference:
    """The reference shape in the coded file's grid and frame."""

    grid: np.ndarray
    #: The reference surface in world units: the original mesh, or marching cubes of a grid.
    mesh: Any
    kind: str  # "mesh" or "voxels"
    surface: str  # what ``mesh`` is, for the report
    center: tuple[float, float, float]
    scale: float
    notes: list[str] = field(default_factory=list)


def voxel_edge(scale: float, grid_shape: tuple[int, ...]) -> float:
    """World length of one voxel edge: ``2 * scale / max(grid)`` (:mod:`occcodec.shapes.frame`)."""
    from occcodec.shapes.frame import voxel_size

    return voxel_size(scale, grid_shape)


def grid_mesh(grid: np.ndarray, center: Any, scale: float) -> Any:
    """The surface of a bool grid as a ``trimesh.Trimesh`` in world coordinates.

    The one meshing function, :func:`occcodec.shapes.meshing.grid_surface`, on the grid:
    the same padding, orientation (outward normals) and frame as the decoder's meshes.
    Empty when the grid is.
    """
    import trimesh

    from occcodec.shapes.meshing import grid_surface

    verts, faces = grid_surface(np.asarray(grid, dtype=bool), center, scale)
    return trimesh.Trimesh(verts, faces, process=False)


def _is_voxel_path(path: str | Path) -> bool:
    from occcodec.shapes.gridio import VOXEL_EXTENSIONS

    return Path(path).suffix.lower() in VOXEL_EXTENSIONS


def _same_frame(center: Any, scale: float, header: Any, rtol: float = FRAME_RTOL) -> bool:
    """Whether (centre, scale) equals the header's within ``rtol`` of the scale (and of
    each centre coordinate's magnitude: a far-off shape carries rounding of its offset)."""
    tol = rtol * max(abs(header.scale), 1e-300)
    c = np.asarray(center, dtype=np.float64)
    hc = np.asarray(header.center, dtype=np.float64)
    ctol = np.maximum(tol, rtol * np.abs(hc))
    return bool(abs(float(scale) - header.scale) <= tol and np.all(np.abs(c - hc) <= ctol))


def load_reference(path: str | Path, header: Any) -> Reference:
    """Load ``path`` in the grid and frame of a coded file's header.

    A mesh is loaded with the header's recorded resolution and the fill the encoder used
    (``solid`` or ``shell``), which reproduces the encoder's frame when the mesh is the
    encoded one (checked against the header); its reference grid is the centre rule
    (:func:`occcodec.shapes.inside.centre_grid`), the truth the encoder measured against.
    A voxel grid is used as given.

    Raises
    ------
    InputError
        If the reference cannot be loaded, or is not the shape the file encodes (another
        grid shape or frame, or a mesh where the file was made from a voxel grid).
    """
    from occcodec.shapes.inputs import load_shape

    path = Path(path)
    hgrid = tuple(int(n) for n in header.grid)
    opts = header.options
    if _is_voxel_path(path):
        shape = load_shape(path)
        kind = "voxels"
    else:
        if header.fill == "given":
            raise InputError(
                f"the coded file was made from a voxel grid, but {str(path)!r} is a mesh: "
                "give that grid (.npz or .binvox) as the reference")
        resolution = opts.get("resolution")
        if not isinstance(resolution, int):
            resolution = max(hgrid)
        shape = load_shape(path, resolution=resolution, fill=header.fill)
        kind = "mesh"
    grid = np.asarray(shape.occupancy, dtype=bool)
    if kind == "mesh" and shape.mesh is not None and shape.grid_frame.shape == hgrid:
        # The encoder measures mesh inputs against the centre rule (README, "Which rule
        # every figure uses"): the winding-number (or shell) truth at the voxel centres.
        from occcodec.shapes.inside import centre_grid

        gf = shape.grid_frame
        grid = centre_grid(shape.mesh, gf.center, gf.scale, gf.shape,
                           shape.fill)  # type: ignore[arg-type]
    if tuple(grid.shape) != hgrid:
        raise InputError(
            f"reference {str(path)!r} gives a {'x'.join(map(str, grid.shape))} grid but the "
            f"file encodes a {'x'.join(map(str, hgrid))} grid: it is not the encoded shape")
    notes = []
    if kind == "mesh" and not _same_frame(shape.center, shape.scale, header):
        if not _same_frame(shape.center, shape.scale, header, FRAME_RTOL_FLOAT32):
            raise InputError(
                f"reference {str(path)!r} is not the encoded shape: voxelized as the encoder "
                f"did, it has centre {tuple(round(c, 9) for c in shape.center)} and scale "
                f"{shape.scale:.9g}, the file records centre "
                f"{tuple(round(c, 9) for c in header.center)} and scale {header.scale:.9g}")
        notes.append("the reference's frame (centre, scale) matches the file's to float32 "
                     "precision, not exactly (its vertices were likely saved as float32): a "
                     "few boundary voxels may differ from the encoded grid")
    if kind == "mesh":
        mesh, surface = shape.mesh, "the reference mesh"
    else:
        mesh = grid_mesh(grid, header.center, header.scale)
        surface = "marching cubes of the reference grid"
        notes.append("the reference is a voxel grid: its surface is the marching-cubes mesh "
                     "of the grid, in the coded file's frame")
    return Reference(grid, mesh, kind, surface, tuple(header.center), float(header.scale), notes)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def compare(ref_grid: np.ndarray, pred_grid: np.ndarray, *, ref_mesh: Any = None,
            pred_mesh: Any = None, scale: float = 1.0, n_points: int = SURFACE_POINTS,
            seed: int = 0) -> dict[str, Any]:
    """All fidelity figures of a prediction against a reference.

    Parameters
    ----------
    ref_grid, pred_grid
        Occupancy grids of the same shape.
    ref_mesh, pred_mesh
        World-space ``trimesh.Trimesh`` surfaces; the surface figures are ``None`` unless
        both are given.
    scale
        World units per normalised unit (the frame's scale), to express surface distances
        in voxel edges as well.

    Returns
    -------
    dict
        ``voxel`` (:func:`~occcodec.tools.metrics.confusion`), ``voxel_chamfer``
        (:func:`~occcodec.tools.metrics.voxel_chamfer`, normalised units) and ``surface``
        (:func:`~occcodec.tools.metrics.surface_distances` with the reference as the first
        surface, ``a_to_b``/``b_to_a`` renamed ``ref_to_pred``/``pred_to_ref``, plus
        ``chamfer_voxels``, ``hausdorff_voxels`` and ``hausdorff_95_voxels``: the same
        distances divided by one voxel edge of ``ref_grid``) or ``None``.
    """
    from occcodec.tools.metrics import confusion, surface_distances, voxel_chamfer

    out: dict[str, Any] = {
        "voxel": confusion(ref_grid, pred_grid),
        "voxel_chamfer": voxel_chamfer(ref_grid, pred_grid),
        "surface": None,
    }
    if ref_mesh is not None and pred_mesh is not None:
        s = surface_distances(ref_mesh, pred_mesh, n_points=n_points, seed=seed)
        edge = voxel_edge(scale, np.shape(ref_grid))
        out["surface"] = {
            "chamfer": s["chamfer"],
            "ref_to_pred": s["a_to_b"],
            "pred_to_ref": s["b_to_a"],
            "hausdorff": s["hausdorff"],
            "hausdorff_95": s["hausdorff_95"],
            "normal_consistency": s["normal_consistency"],
            "chamfer_voxels": s["chamfer"] / edge,
            "hausdorff_voxels": s["hausdorff"] / edge,
            "hausdorff_95_voxels": s["hausdorff_95"] / edge,
            "voxel_edge": edge,
            "n_points": s["n_points"],
        }
    return out


def truth_grid(ref: Reference, shape: tuple[int, ...], fill: str) -> tuple[np.ndarray, str]:
    """The reference's occupancy at the voxel centres of ``shape`` in its frame, and the rule.

    A mesh: :func:`occcodec.shapes.inside.centre_grid` (``|winding number| > 1/2`` at each
    centre; when ``fill`` is ``"shell"``, within half a voxel of the surface). A voxel grid:
    the grid itself, which must have ``shape``.

    Raises
    ------
    UsageError
        If a voxel-grid reference is asked at another grid than its own.
    """
    from occcodec.errors import UsageError

    if ref.kind != "mesh":
        if tuple(ref.grid.shape) != tuple(shape):
            raise UsageError(
                f"the reference is a {'x'.join(map(str, ref.grid.shape))} voxel grid: it can "
                f"only be compared at its own grid, drop --resolution or give "
                f"--resolution {max(ref.grid.shape)}")
        return ref.grid, "the reference grid as given"
    from occcodec.shapes.inside import centre_grid

    dims = (int(shape[0]), int(shape[1]), int(shape[2]))
    truth_fill: Literal["solid", "shell"] = "shell" if fill == "shell" else "solid"
    grid = centre_grid(ref.mesh, ref.center, ref.scale, dims, fill=truth_fill)
    rule = ("winding number > 1/2 at the voxel centres" if truth_fill == "solid"
            else "within half a voxel of the surface at the voxel centres")
    return grid, rule


def evaluate(reference: str | Path, coded_path: str | Path, *, errors: str | Path | None = None,
             force: bool = False, n_points: int = SURFACE_POINTS, seed: int = 0,
             resolution: int | None = None) -> dict[str, Any]:
    """Measure a ``.occ`` file against its original; optionally write the error cloud.

    Without ``resolution`` the grids compared are the encoder's voxelization of the
    reference and the decoded grid, both at the encoded grid, and the decoded mesh is the
    one ``occcodec decode`` writes. With ``resolution`` R (16..1024) the file is decoded at
    R on its long side (grid and mesh), the reference grid at R is the truth at the voxel
    centres (:func:`truth_grid`), and the surface figures compare the decoded mesh at R with
    the original mesh. The record's ``rule`` says which.

    Returns the record that ``occcodec eval --json`` prints (non-finite numbers as ``None``).

    Raises
    ------
    InputError, FormatError
        On an unreadable reference or coded file, or a reference that is not the encoded shape.
    OutputError
        If ``errors`` exists without ``force`` or its directory is missing (checked first).
    UsageError
        If ``resolution`` is outside the decode limits, or a voxel-grid reference is asked at
        another grid.
    """
    import trimesh

    from occcodec import decoder
    from occcodec.fsutil import check_input_file, check_output_path
    from occcodec.shapes.inputs import sha256_file
    from occcodec.tools.metrics import misclassified_points, write_error_cloud

    t0 = time.perf_counter()
    check_input_file(reference)
    check_input_file(coded_path, "a .occ file")
    if errors is not None:
        check_output_path(errors, force)  # fail before the work, not after
    coded = decoder.read(coded_path)
    h = coded.header
    if resolution is not None:
        decoder.decode_shape(coded, resolution)  # a bad resolution fails before the work
    ref = load_reference(reference, h)
    pred = decoder.voxels(coded, resolution)
    if resolution is None:
        truth, rule = ref.grid, ("the encoder's voxelization of the reference at the encoded "
                                 "grid" if ref.kind == "mesh" else "the reference grid as given")
    else:
        truth, rule = truth_grid(ref, pred.shape, h.fill)
    # the mesh `occcodec decode` writes: specks dropped (decoder.SPECK_FRACTION)
    verts, faces = decoder.mesh_arrays(coded, resolution, drop_specks=decoder.SPECK_FRACTION)
    pred_mesh = trimesh.Trimesh(verts, faces, process=False)
    figures = compare(truth, pred, ref_mesh=ref.mesh, pred_mesh=pred_mesh, scale=h.scale,
                      n_points=n_points, seed=seed)
    notes = list(ref.notes)
    src = h.raw.get("source", {})
    recorded = src.get("sha256") if isinstance(src, dict) else None
    same_file = isinstance(recorded, bytes) and recorded.hex() == sha256_file(reference)
    if not same_file:
        notes.append("the reference file's content differs from the encoded input's "
                     "(SHA-256); its voxelization matches, so the figures stand")
    if not pred.any():
        notes.append("the decoded shape is empty: Chamfer distances are infinite (null in JSON)")
    record: dict[str, Any] = {
        "reference": str(reference),
        "coded": str(coded_path),
        "reference_kind": ref.kind,
        "reference_surface": ref.surface,
        "same_source_file": bool(same_file),
        "grid": list(pred.shape),
        "encoded_grid": list(h.grid),
        "resolution": resolution,
        "rule": rule,
        "fill": h.fill,
        "bytes": coded.file.total_bytes,
        "arch": coded.label,
        "params": coded.params,
        "quant": h.quant,
        **figures,
    }
    if errors is not None:
        missing, spurious = misclassified_points(truth, pred, h.center, h.scale)
        write_error_cloud(errors, missing, spurious, force=force)
        record["errors"] = {"path": str(errors), "missing": len(missing),
                            "spurious": len(spurious)}
    record["notes"] = notes
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return _finite_or_none(record)
