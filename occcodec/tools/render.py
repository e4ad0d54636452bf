"""Headless preview images of meshes: a small software rasteriser in numpy, text by PIL.

No GPU, no display, no OpenGL: triangles are projected with an orthographic camera,
rasterised in vectorised batches (grouped by screen-space bounding-box size), resolved with
a z-buffer and shaded per pixel. A 100k-face mesh renders at 800x600 (2x supersampled) in one to
two seconds on one core.

Views, for the default ``up="z"`` (world +z is up on screen for front, side and iso):

* ``front``: camera on the -y side looking along +y; screen right is +x.
* ``side``:  camera on the +x side looking along -x; screen right is +y.
* ``top``:   camera above looking down along -z; screen right is +x, screen up is +y.
* ``iso``:   isometric, camera in the (+x, -y, +z) octant looking along (-1, 1, -1);
  it shows the front, the +x side and the top at once.

Meshes that use another up axis (OBJ and glTF files are usually +y up) are rotated first
with ``up="y"`` (or ``"x"``, ``"-x"``, ``"-y"``, ``"-z"``); with ``up="y"`` the file's +z
(its usual "front") faces the ``front`` camera.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from occcodec.errors import UsageError
from occcodec.fsutil import atomic_output

__all__ = ["UP_AXES", "VIEWS", "render_compare", "render_mesh", "save_png"]

Color = tuple[float, float, float]

# view -> (forward, screen-up hint), in the z-up frame. Right = forward x up.
_VIEW_DIRS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "iso": ((-1.0, 1.0, -1.0), (0.0, 0.0, 1.0)),
    "front": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "side": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "top": ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
}
VIEWS: tuple[str, ...] = tuple(_VIEW_DIRS)

# Rotations (rows) that take the named axis of a mesh onto +z; all have determinant +1.
_UP_ROT: dict[str, tuple[tuple[float, ...], ...]] = {
    "z": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "-z": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "y": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),
    "-y": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "x": ((0, 1, 0), (0, 0, 1), (1, 0, 0)),
    "-x": ((0, 0, 1), (0, 1, 0), (-1, 0, 0)),
}
UP_AXES: tuple[str, ...] = tuple(_UP_ROT)

_MARGIN = 0.06  # fraction of the image left free on each side of the fitted bounding box
_CHUNK = 1 << 21  # candidate pixels per rasterisation batch (bounds peak memory)
_CREASE_COS = np.cos(np.radians(40.0))  # sharper edges keep the face normal (flat)

# Lights in camera space: x right, y up, z towards the viewer. (direction, intensity)
_LIGHTS = (
    ((-0.45, 0.65, 0.62), 0.72),  # key: upper left, in front
    ((0.70, 0.05, 0.45), 0.30),  # fill: right
    ((0.15, 0.45, -0.88), 0.30),  # rim: behind, lights up silhouettes turned away
)
_AMBIENT, _SKY = 0.20, 0.08  # hemisphere ambient: up-facing surfaces a little brighter
_SPECULAR, _SHININESS = 0.18, 40.0
_OUTLINE_DARKEN = 0.45
_JUMP_PX = 3.0  # depth second difference (in pixels) that counts as a discontinuity


# --------------------------------------------------------------------------- camera


def _camera(view: str) -> NDArray[np.float64]:
    """Rows: screen right, screen up, forward (into the scene), in the z-up frame."""
    if view not in _VIEW_DIRS:
        raise UsageError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    f, hint = (np.asarray(v, dtype=np.float64) for v in _VIEW_DIRS[view])
    f /= np.linalg.norm(f)
    right = np.cross(f, hint)
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    return np.stack([right, up, f])


def _up_rotation(up: str) -> NDArray[np.float64]:
    if up not in _UP_ROT:
        raise UsageError(f"unknown up axis {up!r}: choose one of {', '.join(UP_AXES)}")
    return np.asarray(_UP_ROT[up], dtype=np.float64)


def _as_arrays(mesh: Any) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Vertices and triangle faces of a mesh-like object (trimesh Trimesh or Scene)."""
    if not hasattr(mesh, "faces") and hasattr(mesh, "geometry"):  # a trimesh.Scene
        flatten = getattr(mesh, "to_geometry", None)
        mesh = flatten() if flatten is not None else mesh.dump(concatenate=True)
    verts = np.asarray(getattr(mesh, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64)
    if faces.size == 0 or verts.size == 0:
        return verts.reshape(-1, 3), np.zeros((0, 3), dtype=np.int64)
    return verts.reshape(-1, 3), faces.reshape(-1, 3)


def _bounds(verts: NDArray[np.float64]) -> NDArray[np.float64] | None:
    return np.stack([verts.min(axis=0), verts.max(axis=0)]) if len(verts) else None


def _fit(
    bounds: NDArray[np.float64], cam: NDArray[np.float64], width: int, height: int
) -> tuple[float, NDArray[np.float64]]:
    """Pixels per world unit and the screen-space centre that fit ``bounds`` in the image."""
    corners = np.array(np.meshgrid(*bounds.T, indexing="ij")).reshape(3, -1).T
    screen = corners @ cam[:2].T
    lo, hi = screen.min(axis=0), screen.max(axis=0)
    ext = np.maximum(hi - lo, 1e-12)
    usable = np.array([width, height], dtype=np.float64) * (1.0 - 2.0 * _MARGIN)
    scale = float(np.min(usable / ext))
    if not np.isfinite(scale) or scale <= 0.0 or float(np.max(hi - lo)) == 0.0:
        scale = 1.0
    return scale, (lo + hi) / 2.0


# ----------------------------------------------------------------------- rasteriser


def _rasterise(
    sx: NDArray[np.float64], sy: NDArray[np.float64], sz: NDArray[np.float64],
    faces: NDArray[np.int64], width: int, height: int,
) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.float32], NDArray[np.float64]]:
    """Z-buffered coverage of triangles in pixel coordinates (pixel centres at +0.5).

    Returns per-pixel face id (-1 where empty), barycentric weights of vertices 1 and 2,
    and depth (+inf where empty), all flattened in row-major (y, x) order.
    """
    npix = width * height
    buffers = (
        np.full(npix, -1, dtype=np.int64),  # face id
        np.zeros(npix, dtype=np.float32),  # barycentric weight of vertex 1
        np.zeros(npix, dtype=np.float32),  # barycentric weight of vertex 2
        np.full(npix, np.inf, dtype=np.float64),  # depth
    )
    x, y, z = sx[faces], sy[faces], sz[faces]  # (F, 3) each
    # Covered pixel centres c satisfy min <= c + 0.5 <= max.
    x0 = np.maximum(np.ceil(x.min(axis=1) - 0.5), 0)
    x1 = np.minimum(np.floor(x.max(axis=1) - 0.5), width - 1)
    y0 = np.maximum(np.ceil(y.min(axis=1) - 0.5), 0)
    y1 = np.minimum(np.floor(y.max(axis=1) - 0.5), height - 1)
    # Edge functions in coordinates local to each box keep float32 exact enough.
    lx, ly = x - x0[:, None], y - y0[:, None]
    area2 = (lx[:, 1] - lx[:, 0]) * (ly[:, 2] - ly[:, 0]) - (lx[:, 2] - lx[:, 0]) * (
        ly[:, 1] - ly[:, 0]
    )
    keep = (np.abs(area2) > 1e-9) & (x1 >= x0) & (y1 >= y0) & np.isfinite(area2)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return buffers
    coef = _edge_coefficients(lx[idx], ly[idx], area2[idx])
    # Group triangles by the box size they fit in (steps of at most 1.5x), so that one
    # batch is one dense (triangles x box pixels) array with little waste.
    kx = np.searchsorted(_BOX_SIZES, x1[idx] - x0[idx] + 1)
    ky = np.searchsorted(_BOX_SIZES, y1[idx] - y0[idx] + 1)
    key = kx * len(_BOX_SIZES) + ky
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], key.size], strict=False):
        bx = int(_BOX_SIZES[key[s] // len(_BOX_SIZES)])
        by = int(_BOX_SIZES[key[s] % len(_BOX_SIZES)])
        step = max(1, _CHUNK // (bx * by))
        for c in range(s, e, step):
            sel = order[c : min(c + step, e)]
            _raster_batch(idx[sel], coef[sel], bx, by, z, x0, x1, y0, y1, width, buffers)
    return buffers


# Box sizes in pixels: powers of two and 1.5 times powers of two.
_BOX_SIZES = np.unique(
    np.concatenate([2 ** np.arange(25), 3 * 2 ** np.arange(24)]).astype(np.int64)
)


def _edge_coefficients(
    lx: NDArray[np.float64], ly: NDArray[np.float64], area2: NDArray[np.float64]
) -> NDArray[np.float32]:
    """(T, 6) coefficients with ``w1 = a1 ox + b1 oy + c1`` and ``w2 = a2 ox + b2 oy + c2``
    at the centre of box pixel (ox, oy). Dividing by the signed area makes the weights
    independent of winding: no back-face culling, so open meshes render whole."""
    inv = 1.0 / area2
    dx1, dy1 = lx[:, 1] - lx[:, 0], ly[:, 1] - ly[:, 0]
    dx2, dy2 = lx[:, 2] - lx[:, 0], ly[:, 2] - ly[:, 0]
    # w1 = ((cx - x_0) dy2 - dx2 (cy - y_0)) / A,  w2 = (dx1 (cy - y_0) - (cx - x_0) dy1) / A
    cx0, cy0 = 0.5 - lx[:, 0], 0.5 - ly[:, 0]
    a1, b1, c1 = dy2 * inv, -dx2 * inv, (cx0 * dy2 - dx2 * cy0) * inv
    a2, b2, c2 = -dy1 * inv, dx1 * inv, (dx1 * cy0 - cx0 * dy1) * inv
    return np.stack([a1, b1, c1, a2, b2, c2], axis=1).astype(np.float32)


def _raster_batch(
    t: NDArray[np.int64], coef: NDArray[np.float32], bx: int, by: int,
    z: NDArray[np.float64], x0: NDArray[np.float64], x1: NDArray[np.float64],
    y0: NDArray[np.float64], y1: NDArray[np.float64], width: int,
    buffers: tuple[NDArray[Any], ...],
) -> None:
    """Rasterise triangles ``t`` (each fitting a ``bx`` x ``by`` box) into the buffers."""
    face_id, bw1, bw2, zbuf = buffers
    ox = np.arange(bx, dtype=np.float32)[None, None, :]
    oy = np.arange(by, dtype=np.float32)[None, :, None]
    a1, b1, c1, a2, b2, c2 = (coef[:, k, None, None] for k in range(6))
    w1 = a1 * ox + (b1 * oy + c1)  # (T, by, bx)
    w2 = a2 * ox + (b2 * oy + c2)
    eps = np.float32(-1e-6)  # shared edges: a hair of overlap beats cracks
    inside = (w1 >= eps) & (w2 >= eps) & (w1 + w2 <= 1 - eps)
    ti, iy, ix = np.nonzero(inside)
    if ti.size == 0:
        return
    tg = t[ti]
    px, py = x0[tg] + ix, y0[tg] + iy
    ok = (px <= x1[tg]) & (py <= y1[tg])  # boxes were clipped to the image
    ti, iy, ix, tg, px, py = ti[ok], iy[ok], ix[ok], tg[ok], px[ok], py[ok]
    f1, f2 = w1[ti, iy, ix], w2[ti, iy, ix]
    zt = z[tg]
    depth = zt[:, 0] + f1 * (zt[:, 1] - zt[:, 0]) + f2 * (zt[:, 2] - zt[:, 0])
    pix = (py * width + px).astype(np.int64)
    np.minimum.at(zbuf, pix, depth)
    win = depth <= zbuf[pix]
    pw = pix[win]
    face_id[pw] = tg[win]
    bw1[pw] = f1[win]
    bw2[pw] = f2[win]


# -------------------------------------------------------------------------- shading


def _normals(
    verts: NDArray[np.float64], faces: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit face normals (F, 3) and per-corner shading normals (F, 3, 3).

    A corner takes the area-weighted vertex normal unless it differs from the face normal by
    more than the crease angle, so smooth surfaces look smooth and CAD edges stay sharp.
    """
    tri = verts[faces]
    raw = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
    fn = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-30)
    # Weld by position first: files split vertices at UV or normal seams, and normals
    # averaged per split copy would show the seams as lines.
    _, weld = np.unique(verts, axis=0, return_inverse=True)
    weld = weld.reshape(-1)
    wf = weld[faces]
    nw = int(weld.max()) + 1
    vn = np.zeros((nw, 3))
    for k in range(3):
        for a in range(3):
            vn[:, a] += np.bincount(wf[:, k], weights=raw[:, a], minlength=nw)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-30)
    corner = vn[wf]  # (F, 3, 3)
    sharp = np.einsum("fkc,fc->fk", corner, fn) < _CREASE_COS
    corner[sharp] = np.repeat(fn[:, None, :], 3, axis=1)[sharp]
    return fn, corner


def _shade(
    normal_cam: NDArray[np.float64], color: Color
) -> NDArray[np.float64]:
    """Linear RGB in [0, 1] for unit camera-space normals (N, 3)."""
    base = np.asarray(color, dtype=np.float64)
    light = _AMBIENT + _SKY * normal_cam[:, 1]
    spec = np.zeros(len(normal_cam))
    for k, (direction, power) in enumerate(_LIGHTS):
        ld = np.asarray(direction) / np.linalg.norm(direction)
        light = light + power * np.clip(normal_cam @ ld, 0.0, None)
        if k == 0:
            half = ld + np.array([0.0, 0.0, 1.0])
            half /= np.linalg.norm(half)
            spec = _SPECULAR * np.clip(normal_cam @ half, 0.0, None) ** _SHININESS
    return np.clip(base[None, :] * light[:, None] + spec[:, None], 0.0, 1.0)


def _outline(face_id: NDArray[np.int64], depth: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Silhouette and crease-of-depth pixels, as an (H, W) mask.

    Silhouettes: covered pixels next to background. Depth discontinuities (one part in front
    of another): a large second difference of depth along a row or column. The second
    difference is zero on any plane however steeply it is seen, so grazing surfaces are
    not mistaken for edges as a first-difference test would.
    """
    covered = face_id >= 0
    d = np.where(covered, depth, 0.0)
    edge = np.zeros_like(covered)
    for axis in (0, 1):
        prev = [slice(None)] * 2
        mid = [slice(None)] * 2
        nxt = [slice(None)] * 2
        prev[axis], mid[axis], nxt[axis] = slice(None, -2), slice(1, -1), slice(2, None)
        cp, cm, cn = covered[tuple(prev)], covered[tuple(mid)], covered[tuple(nxt)]
        lap = d[tuple(prev)] + d[tuple(nxt)] - 2.0 * d[tuple(mid)]
        # Only the near side of a jump (the positive side of the second difference) is
        # marked, so lines hug the front object.
        jump = cp & cm & cn & (lap > _JUMP_PX)
        edge[tuple(mid)] |= (cm & ~(cp & cn)) | jump
    return edge


def _render_arrays(
    verts: NDArray[np.float64], faces: NDArray[np.int64], bounds: NDArray[np.float64],
    cam: NDArray[np.float64], width: int, height: int, color: Color, background: Color,
    smooth: bool, outline: bool,
) -> NDArray[np.float64]:
    """Float RGB image (H, W, 3) in [0, 1] of a non-empty mesh."""
    scale, centre = _fit(bounds, cam, width, height)
    cs = verts @ cam.T  # camera coordinates: right, up, forward
    sx = width / 2.0 + (cs[:, 0] - centre[0]) * scale
    sy = height / 2.0 - (cs[:, 1] - centre[1]) * scale
    sz = cs[:, 2] * scale  # depth in pixel units: outline thresholds are resolution-free
    face_id, w1, w2, zbuf = _rasterise(sx, sy, sz, faces, width, height)
    img = np.empty((width * height, 3), dtype=np.float64)
    img[:] = np.asarray(background, dtype=np.float64)
    hit = np.flatnonzero(face_id >= 0)
    if hit.size:
        f = face_id[hit]
        fn, corner = _normals(verts, faces)
        if smooth:
            a1 = w1[hit, None].astype(np.float64)
            a2 = w2[hit, None].astype(np.float64)
            n = corner[f, 0] * (1.0 - a1 - a2) + corner[f, 1] * a1 + corner[f, 2] * a2
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
        else:
            n = fn[f]
        # Two-sided lighting: a face seen from its back is shaded with its normal flipped.
        back = (fn[f] @ cam[2]) > 0.0
        n[back] *= -1.0
        ncam = n @ cam.T
        ncam[:, 2] *= -1.0  # camera space with z towards the viewer
        img[hit] = _shade(ncam, color)
    img = img.reshape(height, width, 3)  # type: ignore[assignment]
    if outline and hit.size:
        mask = _outline(face_id.reshape(height, width), zbuf.reshape(height, width))
        img[mask] *= _OUTLINE_DARKEN
    return img


def _to_uint8(img: NDArray[np.float64]) -> NDArray[np.uint8]:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _downsample(img: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    if k == 1:
        return img
    h, w = img.shape[0] // k, img.shape[1] // k
    return img.reshape(h, k, w, k, 3).mean(axis=(1, 3))


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise UsageError(f"image size must be positive, got {width}x{height}")


# ------------------------------------------------------------------------------ API


def render_mesh(
    mesh: Any,
    width: int = 800,
    height: int = 600,
    view: str = "iso",
    color: Color = (0.75, 0.78, 0.85),
    background: Color = (1.0, 1.0, 1.0),
    *,
    up: str = "z",
    smooth: bool = True,
    outline: bool = True,
    supersample: int = 2,
    bounds: Any = None,
) -> NDArray[np.uint8]:
    """Render a mesh to an RGB image with an orthographic camera fitted to its bounding box.

    Parameters
    ----------
    mesh
        A ``trimesh.Trimesh`` (or anything with ``vertices`` and ``faces``; a
        ``trimesh.Scene`` is flattened). A mesh without faces renders as the background
        with an "(empty)" label.
    width, height
        Image size in pixels.
    view
        ``"iso"``, ``"front"``, ``"side"`` or ``"top"`` (see the module docstring).
    color, background
        RGB in [0, 1]: the surface albedo and the background.
    up
        The mesh's up axis: ``"z"`` (default), ``"y"``, ``"x"``, ``"-x"``, ``"-y"``, ``"-z"``.
    smooth
        Interpolate vertex normals (with a 40 degree crease angle); false gives flat faces.
    outline
        Darken silhouettes and depth discontinuities.
    supersample
        Render ``k`` times larger in each direction and average down (anti-aliasing).
    bounds
        ``(2, 3)`` world-space box to fit instead of the mesh's own bounds (used to give
        several renders one camera).

    Returns
    -------
    (height, width, 3) uint8 array

    Raises
    ------
    UsageError
        For an unknown view or up axis, a non-positive size or supersampling factor.
    """
    _check_size(width, height)
    if supersample < 1:
        raise UsageError(f"supersample must be at least 1, got {supersample}")
    cam = _camera(view)
    rot = _up_rotation(up)
    verts, faces = _as_arrays(mesh)
    if len(faces) == 0:
        return _empty_image(width, height, background)
    verts = verts @ rot.T
    if bounds is None:
        box = _bounds(verts[np.unique(faces)])  # unreferenced vertices do not count
    else:
        box = _rotated_bounds(np.asarray(bounds, dtype=np.float64), rot)
    k = int(supersample)
    img = _render_arrays(verts, faces, box, cam, width * k, height * k, color, background,  # type: ignore[arg-type]
                         smooth, outline)
    return _to_uint8(_downsample(img, k))


def _rotated_bounds(bounds: NDArray[np.float64], rot: NDArray[np.float64]) -> NDArray[np.float64]:
    corners = np.array(np.meshgrid(*bounds.reshape(2, 3).T, indexing="ij")).reshape(3, -1).T
    return _bounds(corners @ rot.T)  # type: ignore[return-value]


def _empty_image(width: int, height: int, background: Color) -> NDArray[np.uint8]:
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = _to_uint8(np.asarray(background, dtype=np.float64))
    return _draw_text(img, "(empty)", width / 2.0, height / 2.0, max(10, height // 14),
                      fill=(120, 120, 120), anchor="mm")


# --------------------------------------------------------------------------- text


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: only the fixed-size bitmap font
        return ImageFont.load_default()


def _draw_text(
    img: NDArray[np.uint8], text: str, x: float, y: float, size: int,
    fill: tuple[int, int, int] = (30, 30, 30), anchor: str = "mt",
) -> NDArray[np.uint8]:
    """Draw ``text`` centred horizontally at ``x``; ``anchor`` "mt" puts its top at ``y``,
    "mm" its middle. Positioning uses the measured box, which works with bitmap fonts too."""
    from PIL import Image, ImageDraw

    if not text:
        return img
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tx = x - (left + right) / 2.0
    ty = y - top if anchor == "mt" else y - (top + bottom) / 2.0
    draw.text((tx, ty), text, font=font, fill=fill)
    return np.asarray(pil, dtype=np.uint8).copy()


# ------------------------------------------------------------------------ compare


def render_compare(
    left_mesh: Any,
    right_mesh: Any,
    labels: tuple[str, str] = ("original", "decoded"),
    caption: str = "",
    width: int = 1600,
    height: int = 700,
    view: str = "iso",
    *,
    up: str = "z",
    color: Color = (0.75, 0.78, 0.85),
    background: Color = (1.0, 1.0, 1.0),
    supersample: int = 2,
) -> NDArray[np.uint8]:
    """Two meshes side by side under one camera, with a label above each and a caption.

    Both panels fit the union of the two bounding boxes, so equal sizes look equal and an
    offset between the shapes shows. ``width`` and ``height`` are those of the whole image:
    a label band on top, two panels of ``width // 2`` columns, a caption band below.

    Returns
    -------
    (height, width, 3) uint8 array

    Raises
    ------
    UsageError
        For an unknown view or up axis, or an image too small for the bands.
    """
    _check_size(width, height)
    band = max(18, height // 14)
    cap_band = band if caption else 0
    panel_h = height - band - cap_band
    panel_w = width // 2
    if panel_h < 8 or panel_w < 8:
        raise UsageError(f"image {width}x{height} is too small for a comparison")
    box = _union_bounds(left_mesh, right_mesh)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = _to_uint8(np.asarray(background, dtype=np.float64))
    for i, (mesh, label) in enumerate(zip((left_mesh, right_mesh), labels, strict=False)):
        x0 = 0 if i == 0 else width - panel_w
        img[band : band + panel_h, x0 : x0 + panel_w] = render_mesh(
            mesh, panel_w, panel_h, view, color, background, up=up,
            supersample=supersample, bounds=box,
        )
        img = _draw_text(img, label, x0 + panel_w / 2.0, band * 0.2, int(band * 0.62))
    sep = _to_uint8(np.asarray(background, dtype=np.float64) * 0.85)
    img[band : band + panel_h, width // 2 - 1 : width // 2 + 1] = sep  # panel divider
    if caption:
        img = _draw_text(img, caption, width / 2.0, band + panel_h + cap_band * 0.18,
                         int(cap_band * 0.6), fill=(50, 50, 50))
    return img


def _union_bounds(*meshes: Any) -> NDArray[np.float64] | None:
    boxes = []
    for mesh in meshes:
        verts, faces = _as_arrays(mesh)
        if len(faces):
            boxes.append(_bounds(verts[np.unique(faces)]))
    if not boxes:
        return None
    stacked = np.stack(boxes)  # type: ignore[arg-type]  # (k, 2, 3)
    return np.stack([stacked[:, 0].min(axis=0), stacked[:, 1].max(axis=0)])


# --------------------------------------------------------------------------- output


def save_png(path: str | os.PathLike[str], image: NDArray[np.uint8], force: bool = False) -> None:
    """Write an (H, W, 3) or (H, W, 4) uint8 image as PNG, atomically.

    Raises
    ------
    ValueError
        If ``image`` is not a uint8 RGB/RGBA array.
    OutputError
        If ``path`` exists and ``force`` is false, or its directory does not exist.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3|4) uint8 image, got {arr.dtype} {arr.shape}")
    with atomic_output(path, force) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
