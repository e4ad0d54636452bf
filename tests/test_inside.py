"""Inside tests on the mesh itself: winding number, shell distance, centre grids, training points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from occcodec.errors import InputError, UsageError
from occcodec.shapes.inside import (
    DEFAULT_MIX,
    FINE_MIX,
    TrainingMix,
    centre_grid,
    inside,
    label_points,
    mix_for,
    shell,
    training_points,
    winding,
)
from occcodec.shapes.voxelize import mesh_frame

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _centres(center: np.ndarray, scale: float, shape: tuple[int, int, int]) -> np.ndarray:
    """World coordinates of every voxel centre, (prod(shape), 3), by the spec's rule 10.1."""
    m = max(shape)
    axes = [(np.arange(n) - (n - 1) / 2) / (m / 2) for n in shape]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.asarray(center) + scale * p


def _holed_sphere() -> trimesh.Trimesh:
    """A unit icosphere with the faces around the top pole removed (a hole ~0.3 wide)."""
    s = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    keep = s.triangles_center[:, 2] < 0.985
    return trimesh.Trimesh(s.vertices, s.faces[keep], process=False)


def _rng_points(n: int, lo: float, hi: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, 3))


# ------------------------------------------------------------------ inside / shell


def test_inside_ball_and_box_match_analytic() -> None:
    ball = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    q = _rng_points(4000, -1.3, 1.3)
    r = np.linalg.norm(q, axis=1)
    clear = np.abs(r - 1.0) > 0.01  # the facets lie within 0.003 of the sphere
    assert np.array_equal(inside(ball, q)[clear], (r < 1.0)[clear])

    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    inner = np.all(np.abs(q) < [1.0, 0.5, 0.25], axis=1)
    away = np.all(np.abs(np.abs(q) - [1.0, 0.5, 0.25]) > 1e-6, axis=1)
    assert inner.sum() > 100
    assert np.array_equal(inside(box, q)[away], inner[away])


def test_inverted_mesh_still_fills() -> None:
    ball = trimesh.creation.icosphere(subdivisions=2)
    flipped = trimesh.Trimesh(ball.vertices, ball.faces[:, ::-1], process=False)
    q = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [2.0, 0.0, 0.0]])
    assert winding(flipped, q)[0] == pytest.approx(-1.0, abs=1e-2)  # far field is approximate
    assert inside(flipped, q).tolist() == [True, True, False]


def test_small_hole_keeps_the_inside() -> None:
    holed = _holed_sphere()
    assert not holed.is_watertight
    q = _rng_points(3000, -1.4, 1.4, seed=1)
    r = np.linalg.norm(q, axis=1)
    deep, far = r < 0.8, r > 1.1
    got = inside(holed, q)
    assert got[deep].all() and not got[far].any()


def test_shell_thickness_rule() -> None:
    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    # Points on the x axis at a known distance from the face x = 1.
    d = np.array([-0.3, -0.1, 0.0, 0.099, 0.101, 0.3])
    q = np.stack([1.0 + d, np.zeros_like(d), np.zeros_like(d)], axis=1)
    assert shell(box, q, 0.1).tolist() == [False, True, True, True, False, False]
    with pytest.raises(UsageError):
        shell(box, q, 0.0)


def test_bad_inputs_are_refused() -> None:
    ball = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(UsageError):
        inside(ball, np.zeros((4, 2)))
    with pytest.raises(InputError):
        inside(trimesh.Trimesh(ball.vertices, np.zeros((0, 3), dtype=np.int64)), np.zeros((1, 3)))
    with pytest.raises(UsageError):
        centre_grid(ball, (0, 0, 0), 1.0, (8, 8, 2000))
    with pytest.raises(UsageError):
        centre_grid(ball, (0, 0, 0), 1.0, (8, 8, 8), fill="shell", thickness=1.0)


# ------------------------------------------------------------------ centre grids


def _meshes() -> dict[str, trimesh.Trimesh]:
    tilted = trimesh.creation.box(extents=(1.0, 0.6, 0.3))
    tilted.apply_transform(trimesh.transformations.rotation_matrix(0.4, [1, 2, 3]))
    shapes = {
        "torus": trimesh.load(SAMPLES / "torus.ply", force="mesh"),
        "bracket": trimesh.load(SAMPLES / "bracket.stl", force="mesh"),
        "holed_sphere": _holed_sphere(),
        "tilted_box": tilted,
        "two_overlapping_balls": trimesh.util.concatenate(
            [trimesh.creation.icosphere(2), trimesh.creation.icosphere(2).apply_translation((0.8, 0, 0))]
        ),
    }
    return shapes


@pytest.mark.parametrize("name", sorted(_meshes()))
def test_centre_grid_equals_brute_force_winding(name: str) -> None:
    mesh = _meshes()[name]
    R = 48
    center, _, scale = mesh_frame(mesh.vertices, R)
    grid = centre_grid(mesh, center, scale, (R, R, R))
    truth = inside(mesh, _centres(center, scale, (R, R, R))).reshape(R, R, R)
    assert truth.sum() > 1000
    assert np.array_equal(grid, truth)


def test_centre_grid_non_cubic_frame() -> None:
    mesh = trimesh.load(SAMPLES / "torus.ply", force="mesh")
    shape = (40, 24, 33)
    center = np.asarray(mesh.bounds.mean(axis=0)) + 0.01  # a frame not of the mesh's own box
    scale = 0.75 * float(np.ptp(mesh.vertices, axis=0).max())
    grid = centre_grid(mesh, center, scale, shape)
    truth = inside(mesh, _centres(center, scale, shape)).reshape(shape)
    assert grid.shape == shape and truth.sum() > 500
    assert np.array_equal(grid, truth)


def test_centre_grid_shell_matches_distance_rule() -> None:
    mesh = trimesh.load(SAMPLES / "cloth.obj", force="mesh")
    R = 32
    center, h, scale = mesh_frame(mesh.vertices, R)
    grid = centre_grid(mesh, center, scale, (R, R, R), fill="shell")
    truth = shell(mesh, _centres(center, scale, (R, R, R)), h / 2).reshape(R, R, R)
    assert truth.sum() > 300
    assert np.array_equal(grid, truth)
    thinner = centre_grid(mesh, center, scale, (R, R, R), fill="shell", thickness=h / 4)
    assert thinner.sum() < grid.sum() and not (thinner & ~grid).any()


# ------------------------------------------------------------------ training points


def test_training_points_deterministic_and_consistent() -> None:
    mesh = trimesh.load(SAMPLES / "torus.ply", force="mesh")
    R = 64
    center, _, scale = mesh_frame(mesh.vertices, R)
    a = training_points(mesh, center, scale, 5000, np.random.default_rng(7), resolution=R)
    b = training_points(mesh, center, scale, 5000, np.random.default_rng(7), resolution=R)
    c = training_points(mesh, center, scale, 5000, np.random.default_rng(8), resolution=R)
    assert a[0].dtype == np.float32 and a[1].dtype == np.float32
    assert a[0].shape == (5000, 3) and a[1].shape == (5000,)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    world = np.asarray(center) + scale * a[0].astype(np.float64)
    assert np.array_equal(a[1] > 0.5, inside(mesh, world))
    assert 0.2 < a[1].mean() < 0.8  # near-surface points: both classes well represented
    # The uniform quarter fills the frame's box [-1, 1]^3; offsets reach a little past it.
    assert np.abs(a[0][-1250:]).max() <= 1.0


def test_training_points_shell_and_mix() -> None:
    mesh = trimesh.load(SAMPLES / "cloth.obj", force="mesh")
    R = 32
    center, h, scale = mesh_frame(mesh.vertices, R)
    mix = TrainingMix(sigmas=(0.25,), surface=(0.5,), uniform=0.5)
    pts, lab = training_points(mesh, center, scale, 2000, np.random.default_rng(0), "shell", R, mix=mix)
    world = np.asarray(center) + scale * pts.astype(np.float64)
    assert np.array_equal(lab > 0.5, shell(mesh, world, h / 2))
    assert lab[:1000].mean() > 0.9 and lab[1000:].mean() < 0.2
    with pytest.raises(UsageError):
        TrainingMix(sigmas=(1.0,), surface=(0.5,), uniform=0.2).counts(10)


def test_fine_mix_above_128_reaches_further_from_the_surface() -> None:
    assert mix_for(16) is mix_for(128) is DEFAULT_MIX  # files up to 128^3 train as before
    assert mix_for(129) is mix_for(512) is mix_for(1024) is FINE_MIX
    assert sum(FINE_MIX.counts(1001)) == 1001 and FINE_MIX.uniform == DEFAULT_MIX.uniform
    # At 512^3 the fine mix puts more points 16-64 voxels from the surface (where the
    # default mix left floating sheets to the uniform draw), at the cost of some close ones.
    mesh = trimesh.creation.icosphere(subdivisions=3)
    R = 512
    center, _, scale = mesh_frame(mesh.vertices, R)
    voxel = 2.0 / R
    far = {}
    for mix in (DEFAULT_MIX, FINE_MIX):
        pts, _ = training_points(mesh, center, scale, 20_000, np.random.default_rng(0),
                                 resolution=R, mix=mix)
        near = 20_000 - mix.counts(20_000)[-1]  # the surface draws come first
        r = np.linalg.norm(center + scale * pts[:near].astype(np.float64), axis=1)
        d = np.abs(r - 1.0) / scale / voxel  # voxels from the (nearly) unit sphere
        far[mix] = np.count_nonzero((d > 16) & (d < 64))
    assert far[FINE_MIX] > 2 * far[DEFAULT_MIX]


def test_centre_grid_takes_both_paths_and_each_equals_brute_force() -> None:
    """Closed meshes are decided by one ray axis, open ones by three: both equal the rule,
    including an inverted closed mesh (winding -1) and a mesh with split seam vertices."""
    from occcodec.shapes.inside import _is_closed

    ball = trimesh.creation.icosphere(subdivisions=3)
    inverted = trimesh.Trimesh(ball.vertices, ball.faces[:, ::-1], process=False)
    tri = ball.vertices[ball.faces].reshape(-1, 3)  # every face with its own 3 vertices
    split = trimesh.Trimesh(tri, np.arange(len(tri)).reshape(-1, 3), process=False)
    holed = _holed_sphere()
    for mesh, closed in ((inverted, True), (split, True), (holed, False)):
        v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        assert _is_closed(v, f) is closed
        R = 40
        center, _, scale = mesh_frame(mesh.vertices, R)
        grid = centre_grid(mesh, center, scale, (R, R, R))
        truth = inside(mesh, _centres(center, scale, (R, R, R))).reshape(R, R, R)
        assert truth.sum() > 1000 and np.array_equal(grid, truth)


def test_many_unsettled_centres_are_settled_by_blocks_and_equal_the_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``_BLOCK_ABOVE`` unsettled centres the winding number is asked by blocks: the
    grid equals asking every centre, and far fewer centres are asked."""
    import occcodec.shapes.inside as ins

    # a box open at the top: every column through the opening is unsettled on every axis
    box = trimesh.creation.box(extents=(2.0, 1.6, 1.2))
    keep = box.triangles_center[:, 2] < 0.59
    mesh = trimesh.Trimesh(box.vertices, box.faces[keep], process=False)
    R = 64
    center, _, scale = mesh_frame(mesh.vertices, R)
    truth = inside(mesh, _centres(center, scale, (R, R, R))).reshape(R, R, R)
    asked: list[int] = []
    real = ins._centres_inside

    def counting(*args: object) -> np.ndarray:
        asked.append(len(args[-1]))  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ins, "_centres_inside", counting)
    monkeypatch.setattr(ins, "_BLOCK_ABOVE", 0)
    grid = centre_grid(mesh, center, scale, (R, R, R))
    assert truth.sum() > 50_000 and np.array_equal(grid, truth)
    blocked = sum(asked)
    asked.clear()
    monkeypatch.setattr(ins, "_BLOCK_ABOVE", 10**12)
    assert np.array_equal(centre_grid(mesh, center, scale, (R, R, R)), truth)
    assert 0 < blocked < 0.7 * sum(asked)  # 57 % of them at 64^3; far fewer at 512^3


# ------------------------------------------------------------------ vertical rays


def test_ray_winding_counts_nested_inverted_and_overlapping_parts() -> None:
    from occcodec.shapes.rays import ray_winding

    outer = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    inverted = trimesh.creation.box(extents=(0.6, 0.6, 0.6))
    inverted.invert()
    extra = trimesh.creation.box(extents=(0.4, 0.4, 0.4))
    extra.apply_translation((0.0, 0.0, 0.7))  # overlaps the sphere: winding 2 there
    alone = trimesh.creation.box(extents=(0.3, 0.3, 0.3))
    alone.invert()
    alone.apply_translation((1.1, 1.1, 1.1))  # inverted, outside the sphere: winding -1
    parts = [outer, inverted, extra, alone]  # the inverted box hollows the sphere: 0 there
    tri = np.concatenate([np.asarray(p.triangles) for p in parts])
    q = np.random.default_rng(3).uniform(-1.3, 1.3, size=(20_000, 3))
    w, settled = ray_winding(tri, q)
    exact = sum(np.rint(np.asarray(winding(p, q))).astype(np.int64) for p in parts)
    assert settled.mean() > 0.999
    assert np.array_equal(w[settled], exact[settled])
    assert {-1, 0, 1, 2} <= set(np.unique(w[settled]).tolist())


def test_ray_winding_leaves_rays_through_edges_and_surface_points_unsettled() -> None:
    from occcodec.shapes.rays import ray_winding

    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))  # every face split along a diagonal
    q = np.array([[0.0, 0.0, 0.0],  # a ray up the top face's diagonal: an edge
                  [0.3, -0.2, 1.0],  # on the top face
                  [0.3, -0.2, 0.5],  # plainly inside
                  [0.3, -0.2, 1.5]])  # plainly outside
    w, settled = ray_winding(np.asarray(box.triangles), q)
    assert settled.tolist() == [False, False, True, True]
    assert w[2:].tolist() == [1, 0]


@pytest.mark.parametrize("name", ["cow.obj", "76277.obj", "nut.ply", "teapot.obj"])
def test_label_points_by_rays_agree_with_the_winding_number(name: str,
                                                           shared_meshes: Path) -> None:
    path = shared_meshes / name
    from occcodec.shapes.inputs import load_mesh

    mesh = load_mesh(path)
    v = np.asarray(mesh.vertices)
    center = (v.min(0) + v.max(0)) / 2
    scale = float(np.ptp(v, axis=0).max()) * 0.51
    rng = np.random.default_rng(0)
    near = np.asarray(trimesh.sample.sample_surface(mesh, 20_000, seed=1)[0])
    q = np.concatenate([near + rng.normal(0, scale / 256, near.shape),
                        center + rng.uniform(-scale, scale, (20_000, 3))])
    got = label_points(mesh, q, "solid")
    assert np.count_nonzero(got != inside(mesh, q)) <= 2  # only points on the surface
