"""Tests for occcodec.tools.metrics: hand-computed cases first, then cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from occcodec.errors import InputError, OutputError
from occcodec.shapes.frame import index_to_normalized
from occcodec.tools.metrics import (
    MISSING_RGB,
    SPURIOUS_RGB,
    boundary_voxels,
    confusion,
    misclassified_points,
    surface_chamfer,
    surface_distances,
    voxel_chamfer,
    write_error_cloud,
)


def cube(n: int = 10, lo: tuple[int, int, int] = (2, 2, 2), size: int = 4) -> np.ndarray:
    g = np.zeros((n, n, n), dtype=bool)
    g[lo[0] : lo[0] + size, lo[1] : lo[1] + size, lo[2] : lo[2] + size] = True
    return g


# ----------------------------------------------------------------------------- confusion


def test_identical_grids_are_perfect() -> None:
    g = cube()
    c = confusion(g, g)
    assert c == {"iou": 1.0, "accuracy": 1.0, "precision": 1.0, "recall": 1.0,
                 "tp": 64, "fp": 0, "fn": 0, "tn": 1000 - 64}
    ch = voxel_chamfer(g, g)
    assert ch["chamfer"] == 0.0 and ch["chamfer_voxels"] == 0.0 and ch["hausdorff_voxels"] == 0.0
    assert ch["n_ref"] == ch["n_pred"] == 56  # 4^3 cube minus its 2^3 core


def test_one_voxel_shift_of_a_cube() -> None:
    ref = cube(lo=(2, 2, 2))
    pred = cube(lo=(3, 2, 2))
    c = confusion(ref, pred)
    # overlap 3x4x4 = 48; union 64 + 64 - 48 = 80; 16 voxels wrong on each side.
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (48, 16, 16, 1000 - 80)
    assert c["iou"] == pytest.approx(48 / 80)
    assert c["precision"] == pytest.approx(0.75) and c["recall"] == pytest.approx(0.75)
    assert c["accuracy"] == pytest.approx((1000 - 32) / 1000)


def test_precision_recall_small_case() -> None:
    ref = np.array([1, 1, 1, 0, 0, 0], dtype=bool).reshape(1, 1, 6)
    pred = np.array([0, 1, 1, 1, 1, 0], dtype=bool).reshape(1, 1, 6)
    c = confusion(ref, pred)
    assert (c["tp"], c["fp"], c["fn"], c["tn"]) == (2, 2, 1, 1)
    assert c["precision"] == pytest.approx(0.5)
    assert c["recall"] == pytest.approx(2 / 3)
    assert c["iou"] == pytest.approx(2 / 5)
    assert c["accuracy"] == pytest.approx(3 / 6)


def test_empty_prediction() -> None:
    ref = cube()
    empty = np.zeros_like(ref)
    c = confusion(ref, empty)
    assert c["iou"] == 0.0 and c["recall"] == 0.0
    assert c["precision"] == 0.0  # nothing predicted although something was there
    ch = voxel_chamfer(ref, empty)
    assert math.isinf(ch["chamfer"]) and math.isinf(ch["chamfer_voxels"])
    assert ch["n_pred"] == 0


def test_both_empty() -> None:
    empty = np.zeros((4, 4, 4), dtype=bool)
    c = confusion(empty, empty)
    assert c["iou"] == c["precision"] == c["recall"] == c["accuracy"] == 1.0
    assert voxel_chamfer(empty, empty)["chamfer"] == 0.0


def test_only_spurious_voxels() -> None:
    empty = np.zeros((4, 4, 4), dtype=bool)
    pred = empty.copy()
    pred[1, 1, 1] = True
    c = confusion(empty, pred)
    assert c["iou"] == 0.0 and c["precision"] == 0.0 and c["recall"] == 0.0


def test_shape_mismatch_is_an_input_error() -> None:
    with pytest.raises(InputError, match="differ in shape"):
        confusion(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))
    with pytest.raises(InputError, match="3-D"):
        confusion(np.zeros((4, 4)), np.zeros((4, 4)))


# ------------------------------------------------------------------------------ boundary


def test_boundary_voxels() -> None:
    full = np.ones((3, 3, 3), dtype=bool)
    b = boundary_voxels(full)  # the grid border counts as empty outside
    assert len(b) == 26 and [1, 1, 1] not in b.tolist()
    assert b.dtype == np.int64 and b.shape == (26, 3)
    assert boundary_voxels(np.zeros((3, 3, 3), dtype=bool)).shape == (0, 3)
    one = np.zeros((3, 3, 3), dtype=bool)
    one[2, 0, 1] = True
    assert boundary_voxels(one).tolist() == [[2, 0, 1]]
    assert len(boundary_voxels(cube(size=5))) == 125 - 27


# ------------------------------------------------------------------------------- chamfer


def test_voxel_chamfer_single_points_by_hand() -> None:
    ref = np.zeros((4, 4, 4), dtype=bool)
    pred = ref.copy()
    ref[0, 0, 0] = True
    pred[1, 0, 0] = True
    ch = voxel_chamfer(ref, pred)
    # One voxel apart = 2 / m = 0.5 normalised units: 0.5^2 + 0.5^2.
    assert ch["chamfer"] == pytest.approx(0.5)
    assert ch["chamfer_voxels"] == pytest.approx(1.0)
    assert ch["hausdorff_voxels"] == pytest.approx(1.0)
    assert voxel_chamfer(ref, pred, unit="voxel")["chamfer"] == pytest.approx(2.0)


def test_voxel_chamfer_asymmetric_case_by_hand() -> None:
    ref = np.zeros((4, 4, 4), dtype=bool)
    pred = ref.copy()
    ref[0:2, 0, 0] = True  # A = {(0,0,0), (1,0,0)}
    pred[0, 0, 0] = True  # B = {(0,0,0)}
    ch = voxel_chamfer(ref, pred, unit="voxel")
    # A->B distances [0, 1] voxel: mean 0.5, mean of squares 0.5; B->A: [0].
    assert ch["ref_to_pred_voxels"] == pytest.approx(0.5)
    assert ch["pred_to_ref_voxels"] == pytest.approx(0.0)
    assert ch["chamfer_voxels"] == pytest.approx(0.25)
    assert ch["chamfer"] == pytest.approx(0.5)
    assert voxel_chamfer(ref, pred)["chamfer"] == pytest.approx(0.5 * 0.5**2)
    assert ch["hausdorff_voxels"] == pytest.approx(1.0)


def test_voxel_chamfer_shifted_cube_matches_brute_force() -> None:
    ref, pred = cube(lo=(2, 2, 2)), cube(lo=(3, 2, 3))
    a = index_to_normalized(boundary_voxels(ref), ref.shape)
    b = index_to_normalized(boundary_voxels(pred), pred.shape)
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    expected = (d.min(axis=1) ** 2).mean() + (d.min(axis=0) ** 2).mean()
    ch = voxel_chamfer(ref, pred)
    assert ch["chamfer"] == pytest.approx(expected)
    vox = (d.min(axis=1).mean() + d.min(axis=0).mean()) / 2 / (2 / 10)
    assert ch["chamfer_voxels"] == pytest.approx(vox)


def test_voxel_chamfer_rejects_unknown_unit() -> None:
    g = cube()
    with pytest.raises(InputError, match="unit"):
        voxel_chamfer(g, g, unit="mm")  # type: ignore[arg-type]


# ----------------------------------------------------------------------- surface chamfer


def test_surface_chamfer_of_a_mesh_with_itself_is_near_zero() -> None:
    s = trimesh.creation.icosphere(subdivisions=3)
    r = surface_chamfer(s, s, n_points=20_000, seed=1)
    # Every sample lies on the other mesh's surface: distances to it are 0 up to rounding
    # (the sample-to-sample distances of before had a floor of half the sample spacing).
    assert r["chamfer"] < 1e-9 and r["hausdorff"] < 1e-9
    assert r["chamfer"] >= 0.0
    assert r["n_points"] == 20_000


def test_surface_chamfer_concentric_spheres() -> None:
    a = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    b = trimesh.creation.icosphere(subdivisions=4, radius=1.1)
    r = surface_chamfer(a, b, n_points=20_000, seed=0)
    assert r["chamfer"] == pytest.approx(0.1, abs=0.006)
    assert r["a_to_b"] == pytest.approx(0.1, abs=0.006)
    assert r["b_to_a"] == pytest.approx(0.1, abs=0.006)
    # facets lie inside their sphere by up to 0.3 % of its radius, so a little under 0.1
    # is possible; no sample spacing adds to it any more
    assert 0.096 <= r["hausdorff"] < 0.105


def test_surface_chamfer_is_deterministic_per_seed() -> None:
    a = trimesh.creation.box(extents=(1, 2, 3))
    b = trimesh.creation.icosphere(subdivisions=2)
    assert surface_chamfer(a, b, 5_000, seed=3) == surface_chamfer(a, b, 5_000, seed=3)
    assert surface_chamfer(a, b, 5_000, seed=3) != surface_chamfer(a, b, 5_000, seed=4)


def test_surface_chamfer_empty_and_bad_input() -> None:
    s = trimesh.creation.icosphere(subdivisions=1)
    empty = trimesh.Trimesh()
    assert math.isinf(surface_chamfer(s, empty, 100)["chamfer"])
    assert surface_chamfer(empty, empty, 100)["chamfer"] == 0.0
    with pytest.raises(InputError):
        surface_chamfer(s, "not a mesh", 100)
    with pytest.raises(InputError):
        surface_chamfer(s, s, 0)


# ----------------------------------------------------------------------- error clouds


def test_misclassified_points_world_coordinates() -> None:
    ref = np.zeros((4, 4, 4), dtype=bool)
    pred = ref.copy()
    ref[0, 0, 0] = ref[1, 1, 1] = True
    pred[1, 1, 1] = pred[3, 3, 3] = True
    missing, spurious = misclassified_points(ref, pred, center=(1.0, 2.0, 3.0), scale=2.0)
    np.testing.assert_allclose(missing, [[1 - 1.5, 2 - 1.5, 3 - 1.5]])  # p = -0.75
    np.testing.assert_allclose(spurious, [[1 + 1.5, 2 + 1.5, 3 + 1.5]])  # p = +0.75


def _read_ply(path) -> tuple[list[str], np.ndarray]:
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    count = int(next(l for l in header if l.startswith("element vertex")).split()[-1])
    if "format ascii 1.0" in header:
        rows = np.loadtxt(data[end:].decode().splitlines(), ndmin=2).reshape(-1, 6)
    else:
        dt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                       ("r", "u1"), ("g", "u1"), ("b", "u1")])
        rec = np.frombuffer(data[end:], dtype=dt)
        assert len(data) - end == count * dt.itemsize
        rows = np.column_stack([rec[k].astype(float) for k in dt.names]).reshape(-1, 6)
    assert len(rows) == count
    return header, rows


@pytest.mark.parametrize("ascii", [False, True])
def test_error_cloud_round_trip(tmp_path, ascii: bool) -> None:
    missing = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-1.5, 0.25, 9.0]])
    spurious = np.array([[5.0, 5.0, 5.0], [6.0, 6.0, 6.0]])
    path = tmp_path / "err.ply"
    assert write_error_cloud(path, missing, spurious, ascii=ascii) == 5
    header, rows = _read_ply(path)
    assert header[0] == "ply"
    np.testing.assert_allclose(rows[:3, :3], missing)
    np.testing.assert_allclose(rows[3:, :3], spurious)
    assert {tuple(r) for r in rows[:3, 3:].astype(int)} == {MISSING_RGB}
    assert {tuple(r) for r in rows[3:, 3:].astype(int)} == {SPURIOUS_RGB}
    # And trimesh (as MeshLab would) sees a coloured point cloud.
    cloud = trimesh.load(path)
    assert isinstance(cloud, trimesh.PointCloud) and len(cloud.vertices) == 5
    np.testing.assert_array_equal(cloud.colors[:3, :3], np.tile(MISSING_RGB, (3, 1)))
    np.testing.assert_array_equal(cloud.colors[3:, :3], np.tile(SPURIOUS_RGB, (2, 1)))


def test_error_cloud_with_zero_points(tmp_path) -> None:
    path = tmp_path / "none.ply"
    assert write_error_cloud(path, np.zeros((0, 3)), []) == 0
    header, rows = _read_ply(path)
    assert "element vertex 0" in header and rows.shape == (0, 6)


def test_error_cloud_never_overwrites_without_force(tmp_path) -> None:
    path = tmp_path / "err.ply"
    write_error_cloud(path, [[0, 0, 0]], [])
    with pytest.raises(OutputError, match="--force"):
        write_error_cloud(path, [], [[1, 1, 1]])
    write_error_cloud(path, [], [[1, 1, 1]], force=True)
    assert _read_ply(path)[1][0, 3:].astype(int).tolist() == list(SPURIOUS_RGB)
    assert [p.name for p in tmp_path.iterdir()] == ["err.ply"]  # no temporary left behind
    with pytest.raises(InputError):
        write_error_cloud(tmp_path / "bad.ply", np.zeros((2, 2)), [])


# ----------------------------------------------------------------------- surface distances


def test_surface_distances_two_concentric_spheres_by_hand() -> None:
    # Every point of either sphere is r2 - r1 from the other along its radius, and the
    # nearest points have parallel normals: Chamfer = Hausdorff = r2 - r1, consistency 1
    # (up to the facets, within 0.003 r of the sphere, and the sample spacing).
    r1, r2 = 1.0, 1.5
    a = trimesh.creation.icosphere(subdivisions=4, radius=r1)
    b = trimesh.creation.icosphere(subdivisions=4, radius=r2)
    r = surface_distances(a, b, n_points=20_000, seed=0)
    assert r["chamfer"] == pytest.approx(r2 - r1, abs=0.01)
    assert r["hausdorff_95"] == pytest.approx(r2 - r1, abs=0.02)
    assert r["hausdorff"] == pytest.approx(r2 - r1, abs=0.03)
    assert r["hausdorff_95"] <= r["hausdorff"]
    assert r["normal_consistency"] == pytest.approx(1.0, abs=0.01)
    # surface_chamfer reports the same samples' figures.
    c = surface_chamfer(a, b, n_points=20_000, seed=0)
    assert all(c[k] == r[k] for k in c)


def test_normal_consistency_of_perpendicular_squares_is_zero() -> None:
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]])
    wall = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1]], [[0, 1, 2], [0, 2, 3]])
    r = surface_distances(flat, wall, n_points=4_000, seed=2)
    assert r["normal_consistency"] == pytest.approx(0.0, abs=1e-12)
    inverted = trimesh.Trimesh(flat.vertices, flat.faces[:, ::-1])
    assert surface_distances(flat, inverted, 4_000)["normal_consistency"] == pytest.approx(1.0)
    # A square against itself lifted by 0.2: every distance is 0.2 at most, and at least
    # 0.2 (the planes are 0.2 apart), so Chamfer = both Hausdorffs = 0.2.
    lifted = trimesh.Trimesh(np.add(flat.vertices, (0.0, 0.0, 0.2)), flat.faces)
    r = surface_distances(flat, lifted, n_points=4_000, seed=0)
    assert r["chamfer"] >= 0.2 - 1e-12 and r["chamfer"] < 0.21
    assert 0.2 - 1e-12 <= r["hausdorff_95"] <= r["hausdorff"] < 0.23


def test_surface_distances_empty() -> None:
    s = trimesh.creation.icosphere(subdivisions=1)
    empty = trimesh.Trimesh()
    one = surface_distances(s, empty, 100)
    assert math.isinf(one["hausdorff_95"]) and one["normal_consistency"] == 0.0
    both = surface_distances(empty, empty, 100)
    assert both["chamfer"] == 0.0 and both["normal_consistency"] == 1.0
