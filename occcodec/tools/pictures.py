"""Pictures for ``occcodec render``: a PNG of a ``.occ`` file (decoded to a mesh) or of a mesh.

The pictures come from :mod:`occcodec.tools.render`'s numpy rasteriser: no GPU, no display.
``--compare MESH`` puts the original mesh and the decoded ``.occ`` side by side under one
camera, with the IoU and both file sizes in the caption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from occcodec.errors import UsageError

__all__ = ["FORMAT_UP", "bottom_heaviness", "caption", "guess_up", "render_file"]

#: The up axis each mesh format's files usually have: glTF is +y up by specification, and
#: so are most OBJ, PLY and OFF files (scanners, Blender and ShapeNet export them y-up: the
#: Stanford bunny lies on its back when drawn z-up); STL comes from CAD and 3D printing,
#: which are z-up. A ``.occ`` or a voxel grid has no convention: z.
FORMAT_UP: dict[str, str] = {".glb": "y", ".gltf": "y", ".obj": "y", ".ply": "y", ".off": "y",
                             ".stl": "z"}
#: The shape heuristic overrides the format's axis when the other candidate is this much
#: more bottom-heavy (see :func:`bottom_heaviness`). Measured on /work/shared/meshes and the
#: samples: known y-up files score 0.07-0.10 on y (spot, teapot, elephant, a bunny-like
#: shape), z-up parts 0.05-0.30 on z (samples/mug.obj 0.054, bracket.stl 0.21, airplane.ply
#: 0.23); symmetric axes score 0.00-0.02.
HEAVY_MARGIN = 0.05


def bottom_heaviness(mesh: Any) -> dict[str, float]:
    """How much lower than its bounding box's middle the surface's area centroid lies, per
    axis, in fractions of the extent (``"y": 0.1``: the centroid is 10 % of the height below
    the middle). Objects stand on their heavy end: a bunny's body is below its ears, a
    mug's base below its rim; a symmetric axis scores 0.
    """
    import numpy as np

    verts = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        return {"x": 0.0, "y": 0.0, "z": 0.0}
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not area.sum() > 0:
        return {"x": 0.0, "y": 0.0, "z": 0.0}
    centroid = (tri.mean(axis=1) * area[:, None]).sum(axis=0) / area.sum()
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    extent = hi - lo
    score = np.where(extent > 0, ((lo + hi) / 2 - centroid) / np.where(extent > 0, extent, 1),
                     0.0)
    return dict(zip("xyz", (float(v) for v in score), strict=True))


def guess_up(path: str | Path | None, mesh: Any = None) -> str:
    """The up axis for ``--up auto``: the file format's convention (:data:`FORMAT_UP`;
    ``"z"`` without one), unless ``mesh`` is clearly bottom-heavy along the other of y and z
    (by :data:`HEAVY_MARGIN`, :func:`bottom_heaviness`)."""
    suffix = Path(path).suffix.lower() if path is not None else ""
    up = FORMAT_UP.get(suffix, "z")
    if mesh is None:
        return up
    score = bottom_heaviness(mesh)
    other = "z" if up == "y" else "y"
    if score[other] > HEAVY_MARGIN and score[other] > score[up] + HEAVY_MARGIN:
        return other
    return up


def _is_occ(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".occ"


def _decoded_mesh(coded: Any, resolution: int | None) -> Any:
    import trimesh

    from occcodec import decoder

    verts, faces = decoder.mesh_arrays(coded, resolution)
    return trimesh.Trimesh(verts, faces, process=False)


def _load_mesh(path: str | Path) -> Any:
    """A mesh file as loaded for encoding, or a voxel file as the marching-cubes surface of
    its grid (in the grid's own frame, the one the encoder records for voxel inputs)."""
    from occcodec.shapes.gridio import VOXEL_EXTENSIONS
    from occcodec.shapes.inputs import load_mesh, load_shape
    from occcodec.tools.evaluate import grid_mesh

    if Path(path).suffix.lower() in VOXEL_EXTENSIONS:
        shape = load_shape(path)
        return grid_mesh(shape.occupancy, shape.center, shape.scale)
    return load_mesh(path)


def _iou(coded: Any, reference: Path) -> tuple[float | None, str]:
    """IoU of the decoded grid against ``reference`` voxelized as at encode time, or the
    IoU the encoder recorded when the reference is not the encoded shape."""
    from occcodec import decoder
    from occcodec.errors import InputError
    from occcodec.tools.evaluate import load_reference
    from occcodec.tools.metrics import confusion

    try:
        ref = load_reference(reference, coded.header)
    except InputError:
        recorded = coded.header.metrics.get("iou")
        if isinstance(recorded, (int, float)):
            return float(recorded), "IoU at encode"
        return None, ""
    return float(confusion(ref.grid, decoder.voxels(coded))["iou"]), "IoU"


def caption(iou: float | None, iou_label: str, original: Path, coded: Path, params: int) -> str:
    """``IoU 99.12 %  |  cow.obj 180,177 B  ->  cow.occ 2,345 B (77x smaller), 1,689 params``."""
    ob, cb = original.stat().st_size, coded.stat().st_size
    parts = []
    if iou is not None:
        parts.append(f"{iou_label} {iou * 100:.2f} %")
    ratio = f"{ob / cb:.0f}x smaller" if ob >= cb else f"{cb / ob:.1f}x larger"
    parts.append(f"{original.name} {ob:,} B  ->  {coded.name} {cb:,} B ({ratio}), "
                 f"{params:,} params")
    return "   |   ".join(parts)


def render_file(input_path: str | Path, output: str | Path, *, view: str = "iso",
                up: str = "auto", width: int | None = None, height: int | None = None,
                compare: str | Path | None = None, resolution: int | None = None,
                force: bool = False) -> dict[str, Any]:
    """Render ``input_path`` (a ``.occ`` or a mesh) to the PNG ``output``.

    With ``compare``, ``input_path`` must be a ``.occ``: the picture shows ``compare``
    (the original mesh) on the left and the decoded shape on the right. Default sizes:
    800x600, or 1600x700 for a comparison. ``up="auto"`` takes the up axis from the mesh
    file's format and the shape (:func:`guess_up`).

    Returns
    -------
    dict
        ``output``, ``width``, ``height``, ``view``, ``up`` and, for a comparison, ``iou``
        and ``caption``.

    Raises
    ------
    UsageError
        On a bad view, up axis, size, or ``compare`` without a ``.occ`` input.
    InputError, FormatError
        On an unreadable input.
    OutputError
        If ``output`` exists without ``force`` (checked before any work).
    """
    from occcodec import decoder
    from occcodec.fsutil import check_input_file, check_output_path
    from occcodec.tools.render import render_compare, render_mesh, save_png

    if Path(output).suffix.lower() != ".png":
        raise UsageError(f"output {str(output)!r} must end in .png")
    # inputs first (the first thing to fix), then the output, both before any work
    for given in (input_path, compare):
        if given is not None:
            check_input_file(given, "a .occ file or a mesh")
    check_output_path(output, force)
    if resolution is not None and not _is_occ(input_path):
        raise UsageError("--resolution applies to a .occ input only")
    source = compare if compare is not None else (None if _is_occ(input_path) else input_path)
    record: dict[str, Any] = {"output": str(output), "view": view}
    if compare is not None:
        if not _is_occ(input_path):
            raise UsageError("--compare needs a .occ INPUT (the decoded side of the picture)")
        w, h = width or 1600, height or 700
        coded = decoder.read(input_path)
        original = _load_mesh(compare)
        if up == "auto":
            up = guess_up(source, original)
        iou, label = _iou(coded, Path(compare))
        text = caption(iou, label, Path(compare), Path(input_path), coded.params)
        img = render_compare(original, _decoded_mesh(coded, resolution),
                             labels=(f"original: {Path(compare).name}",
                                     f"decoded: {Path(input_path).name}"),
                             caption=text, width=w, height=h, view=view, up=up)
        record.update(iou=iou, caption=text)
    else:
        w, h = width or 800, height or 600
        if _is_occ(input_path):
            mesh = _decoded_mesh(decoder.read(input_path), resolution)
        else:
            mesh = _load_mesh(input_path)
        if up == "auto":
            up = guess_up(source, mesh)
        img = render_mesh(mesh, w, h, view, up=up)
    save_png(output, img, force=force)
    record.update(up=up, width=w, height=h)
    return record
