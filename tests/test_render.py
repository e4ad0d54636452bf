"""Tests for occcodec.tools.render: sizes, orientation conventions, shared camera, empty input."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from occcodec.errors import OutputError, UsageError
from occcodec.tools.render import VIEWS, render_compare, render_mesh, save_png

W, H = 160, 120
WHITE = np.array([255, 255, 255], dtype=np.uint8)


def covered(img: np.ndarray, background: np.ndarray = WHITE) -> np.ndarray:
    return np.any(img != background, axis=2)


def two_pillars(axis: int) -> trimesh.Trimesh:
    """A tall pillar on the + side of ``axis`` and a short one on the - side."""
    tall_c, short_c = np.zeros(3), np.zeros(3)
    tall_c[axis], short_c[axis] = 1.0, -1.0
    tall = trimesh.creation.box(extents=(0.3, 0.3, 2.0))
    tall.apply_translation(tall_c + np.array([0, 0, 1.0]))
    short = trimesh.creation.box(extents=(0.3, 0.3, 1.0))
    short.apply_translation(short_c + np.array([0, 0, 0.5]))
    return trimesh.util.concatenate([tall, short])


def test_box_render_has_requested_size_and_content() -> None:
    img = render_mesh(trimesh.creation.box(), width=W, height=H)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert (img[0, 0] == WHITE).all() and (img[-1, -1] == WHITE).all()
    cov = covered(img)
    assert 0.05 < cov.mean() < 0.9
    # Shaded: the three visible faces of the iso view get distinct intensities.
    assert len(np.unique(img[cov].sum(axis=1) // 24)) >= 3


def test_sphere_render_is_centred_and_round() -> None:
    img = render_mesh(trimesh.creation.icosphere(subdivisions=3), width=W, height=H, view="front")
    ys, xs = np.nonzero(covered(img))
    assert abs(xs.mean() - W / 2) < 2 and abs(ys.mean() - H / 2) < 2
    # fitted with margins: diameter about (1 - 2 * 0.06) of the shorter side
    assert (ys.max() - ys.min()) == pytest.approx(H * 0.88, abs=3)
    assert (xs.max() - xs.min()) == pytest.approx(ys.max() - ys.min(), abs=2)


def test_each_view_differs() -> None:
    mesh = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    imgs = {v: render_mesh(mesh, width=W, height=H, view=v) for v in VIEWS}
    assert set(VIEWS) == {"iso", "front", "side", "top"}
    for i, a in enumerate(VIEWS):
        for b in VIEWS[i + 1 :]:
            assert np.abs(imgs[a].astype(int) - imgs[b].astype(int)).mean() > 1.0, (a, b)


def test_view_orientation_conventions() -> None:
    # front: +x is right and +z is up; the tall pillar sits at +x.
    img = render_mesh(two_pillars(axis=0), width=W, height=H, view="front", supersample=1)
    rows = np.nonzero(covered(img))
    top_row = rows[0].min()
    assert rows[1][rows[0] == top_row].mean() > W / 2
    # side: camera at +x, screen right is +y; the tall pillar sits at +y.
    img = render_mesh(two_pillars(axis=1), width=W, height=H, view="side", supersample=1)
    rows = np.nonzero(covered(img))
    assert rows[1][rows[0] == rows[0].min()].mean() > W / 2
    # top: screen up is +y; a pillar at +y is in the upper half.
    img = render_mesh(two_pillars(axis=1), width=W, height=H, view="top", supersample=1)
    ys, _ = np.nonzero(covered(img))
    assert ys.min() < H / 2 < ys.max()


def test_up_axis_rotates_the_mesh() -> None:
    mesh_z = two_pillars(axis=0)
    mesh_y = mesh_z.copy()
    # z-up -> y-up: (x, y, z) -> (x, z, -y); render(up="y") must undo it.
    mesh_y.vertices = mesh_z.vertices[:, [0, 2, 1]] * [1, 1, -1]
    a = render_mesh(mesh_z, width=W, height=H, view="iso")
    b = render_mesh(mesh_y, width=W, height=H, view="iso", up="y")
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 0.5


def test_compare_has_requested_size_and_shared_camera() -> None:
    mesh = trimesh.creation.icosphere(subdivisions=2)
    img = render_compare(mesh, mesh, labels=("original", "decoded"),
                         caption="IoU 98.7 %  |  original 120 KB  ->  .occ 3.1 KB",
                         width=2 * W, height=H + 40)
    assert img.shape == (H + 40, 2 * W, 3)
    band = max(18, (H + 40) // 14)
    assert covered(img[:band]).any()  # labels drawn
    assert covered(img[-band:]).any()  # caption drawn
    panels = img[band:-band]
    left, right = panels[:, 1 : W - 1], panels[:, W + 1 : 2 * W - 1]
    np.testing.assert_array_equal(left, right)  # same mesh, same camera, same pixels


def test_compare_scales_match() -> None:
    small = trimesh.creation.box(extents=(1, 1, 1))
    big = trimesh.creation.box(extents=(2, 2, 2))
    img = render_compare(small, big, labels=("a", "b"), caption="", width=2 * W, height=H)
    band = max(18, H // 14)
    left, right = covered(img[band:, : W - 2]), covered(img[band:, W + 2 :])
    assert right.sum() > 3 * left.sum()  # one camera: the big box looks about 4x the area


def test_empty_mesh_renders_a_labelled_background() -> None:
    img = render_mesh(trimesh.Trimesh(), width=W, height=H)
    assert img.shape == (H, W, 3)
    assert (img[0, 0] == WHITE).all()
    cov = covered(img)
    assert cov.any() and cov.mean() < 0.1  # only the "(empty)" label
    both = render_compare(trimesh.Trimesh(), trimesh.creation.box(), width=2 * W, height=H)
    assert both.shape == (H, 2 * W, 3)


def test_background_and_color_are_used() -> None:
    img = render_mesh(trimesh.creation.box(), width=W, height=H, color=(1.0, 0.0, 0.0),
                      background=(0.0, 0.0, 0.0), outline=False)
    assert (img[0, 0] == 0).all()
    cov = covered(img, np.zeros(3, dtype=np.uint8))
    assert (img[cov][:, 0] >= img[cov][:, 1]).all()  # red surface (plus white specular)


def test_bad_arguments() -> None:
    box = trimesh.creation.box()
    with pytest.raises(UsageError, match="view"):
        render_mesh(box, view="bottom")
    with pytest.raises(UsageError, match="up axis"):
        render_mesh(box, up="w")
    with pytest.raises(UsageError):
        render_mesh(box, width=0)


def test_save_png(tmp_path) -> None:
    img = render_mesh(trimesh.creation.box(), width=W, height=H)
    path = tmp_path / "box.png"
    save_png(path, img)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), img)
    with pytest.raises(OutputError, match="--force"):
        save_png(path, img)
    save_png(path, img, force=True)
    with pytest.raises(ValueError):
        save_png(tmp_path / "bad.png", img.astype(np.float32))


@pytest.mark.slow
def test_render_100k_faces() -> None:
    """A large mesh renders (its speed is measured by tests/benchmarks, not asserted)."""
    mesh = trimesh.creation.torus(1.0, 0.3, major_sections=400, minor_sections=125)
    assert len(mesh.faces) >= 100_000
    img = render_mesh(mesh, width=800, height=600)
    assert img.shape == (600, 800, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 10
