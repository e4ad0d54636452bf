"""``occcodec eval``: how close a decoded ``.occ`` is to its original, in voxels and on the surface.

The reference (the original mesh or voxel grid) is voxelized exactly as the encoder did it:
the resolution and fill recorded in the file's header, and the frame (centre, scale) checked
against the header's, so that the grids compared are the encoded grid and the decoded grid,
voxel for voxel. The metrics are those of :mod:`occcodec.tools.metrics`, whose docstrings define
them exactly:

* voxel IoU, accuracy, precision, recall on the encoded grid (:func:`~occcodec.tools.metrics.confusion`);
* the Chamfer distance between the boundary voxels of both grids
  (:func:`~occcodec.tools.metrics.voxel_chamfer`): the squared, paper-style number in normalised
  units and the mean distance in voxel edges;
* the Chamfer distance between the decoded mesh (marching cubes of the network, as
  ``occcodec decode`` writes it) and the reference surface, on points sampled uniformly by
  area, in the reference's units (:func:`~occcodec.tools.metrics.surface_chamfer`), beside its
  sampling floor: the same figure between two samplings of the reference itself. A voxel-grid
  reference has no surface of its own: its grid is meshed by marching cubes in the same world
  frame, and the report says so.

:func:`compare` does the measuring for ``eval`` and ``bench`` alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.errors import InputError

__all__ = [
    "Reference",
    "compare",
    "evaluate",
    "grid_mesh",
    "load_reference",
    "voxel_edge",
]

#: Points sampled on each surface for the surface Chamfer distance.
SURFACE_POINTS = 100_000
#: Relative tolerance on the frame (centre, scale) of a re-voxelized reference.
FRAME_RTOL = 1e-9


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


def _same_frame(center: Any, scale: float, header: Any) -> bool:
    tol = FRAME_RTOL * max(abs(header.scale), 1e-300)
    c = np.asarray(center, dtype=np.float64)
    hc = np.asarray(header.center, dtype=np.float64)
    ctol = np.maximum(tol, FRAME_RTOL * np.abs(hc))
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
    if kind == "mesh" and not _same_frame(shape.center, shape.scale, header):
        raise InputError(
            f"reference {str(path)!r} is not the encoded shape: voxelized as the encoder did, "
            f"it has centre {tuple(round(c, 9) for c in shape.center)} and scale "
            f"{shape.scale:.9g}, the file records centre "
            f"{tuple(round(c, 9) for c in header.center)} and scale {header.scale:.9g}")
    notes = []
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
        (:func:`~occcodec.tools.metrics.surface_chamfer` with the reference as the first surface,
        renamed ``ref_to_pred``/``pred_to_ref``, plus ``chamfer_voxels`` and
        ``hausdorff_voxels``: the same distances divided by one voxel edge) or ``None``.
    """
    from occcodec.tools.metrics import confusion, surface_chamfer, voxel_chamfer

    out: dict[str, Any] = {
        "voxel": confusion(ref_grid, pred_grid),
        "voxel_chamfer": voxel_chamfer(ref_grid, pred_grid),
        "surface": None,
    }
    if ref_mesh is not None and pred_mesh is not None:
        s = surface_chamfer(ref_mesh, pred_mesh, n_points=n_points, seed=seed)
        edge = voxel_edge(scale, np.shape(ref_grid))
        out["surface"] = {
            "chamfer": s["chamfer"],
            "ref_to_pred": s["a_to_b"],
            "pred_to_ref": s["b_to_a"],
            "hausdorff": s["hausdorff"],
            "chamfer_voxels": s["chamfer"] / edge,
            "hausdorff_voxels": s["hausdorff"] / edge,
            "voxel_edge": edge,
            "n_points": s["n_points"],
        }
    return out


def evaluate(reference: str | Path, coded_path: str | Path, *, errors: str | Path | None = None,
             force: bool = False, n_points: int = SURFACE_POINTS, seed: int = 0) -> dict[str, Any]:
    """Measure a ``.occ`` file against its original; optionally write the error cloud.

    Returns the record that ``occcodec eval --json`` prints (non-finite numbers as ``None``).

    Raises
    ------
    InputError, FormatError
        On an unreadable reference or coded file, or a reference that is not the encoded shape.
    OutputError
        If ``errors`` exists without ``force`` or its directory is missing (checked first).
    """
    import trimesh

    from occcodec import decoder
    from occcodec.fsutil import check_output_path
    from occcodec.shapes.inputs import sha256_file
    from occcodec.tools.metrics import misclassified_points, write_error_cloud

    t0 = time.perf_counter()
    if errors is not None:
        check_output_path(errors, force)  # fail before the work, not after
    coded = decoder.read(coded_path)
    h = coded.header
    ref = load_reference(reference, h)
    pred = decoder.voxels(coded)
    verts, faces = decoder.mesh_arrays(coded)
    pred_mesh = trimesh.Trimesh(verts, faces, process=False)
    figures = compare(ref.grid, pred, ref_mesh=ref.mesh, pred_mesh=pred_mesh, scale=h.scale,
                      n_points=n_points, seed=seed)
    if figures["surface"] is not None:
        # The same surface sampled twice is not at distance 0: this is the smallest surface
        # Chamfer that n_points can resolve, the yardstick for the figure above it.
        from occcodec.tools.metrics import surface_chamfer

        floor = surface_chamfer(ref.mesh, ref.mesh, n_points=n_points, seed=seed)["chamfer"]
        figures["surface"]["floor"] = floor
        figures["surface"]["floor_voxels"] = floor / figures["surface"]["voxel_edge"]
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
        "grid": list(h.grid),
        "fill": h.fill,
        "bytes": coded.file.total_bytes,
        "arch": str(h.arch),
        "params": h.arch.params,
        "quant": h.quant,
        **figures,
    }
    if errors is not None:
        missing, spurious = misclassified_points(ref.grid, pred, h.center, h.scale)
        write_error_cloud(errors, missing, spurious, force=force)
        record["errors"] = {"path": str(errors), "missing": len(missing),
                            "spurious": len(spurious)}
    record["notes"] = notes
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return _finite_or_none(record)
