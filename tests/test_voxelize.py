"""Voxelizer: the coordinate convention, shell vs solid, the auto pick, refusals, robustness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy import ndimage
from scipy.spatial.transform import Rotation

from occcodec.errors import InputError, UsageError
from occcodec.shapes.voxelize import voxelize

SHARED_MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _centres(R: int, center: tuple[float, float, float], scale: float) -> np.ndarray:
    """World coordinates of all voxel centres, (R, R, R, 3), by the documented convention."""
    i = np.arange(R)
    p = (i - (R - 1) / 2) / (R / 2)
    grid = np.stack(np.meshgrid(p, p, p, indexing="ij"), axis=-1)
    return np.asarray(center) + scale * grid


def _open_sheet(n: int = 12) -> trimesh.Trimesh:
    x, y = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    z = 0.2 * np.sin(3 * x) * np.cos(2 * y)
    v = np.stack([x, y, z], -1).reshape(-1, 3)
    a = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    f = np.concatenate([np.stack([a, a + n, a + n + 1], 1), np.stack([a, a + n + 1, a + 1], 1)])
    return trimesh.Trimesh(v, f, process=False)


# ------------------------------------------------------------------ frame convention


@pytest.mark.parametrize("offset", [(0.0, 0.0, 0.0), (5.0, -3.0, 2.0)])
def test_box_index_range_and_frame(offset: tuple[float, float, float]) -> None:
    R = 32
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    box.apply_translation(offset)
    grid, center, scale, fill, note = voxelize(box, R, "solid")
    h = 2.0 / (R - 2)
    assert fill == "solid" and "watertight" in note
    assert center == pytest.approx(offset)
    assert scale == pytest.approx(R * h / 2)
    # Longest axis: one empty voxel of margin each side. y: half-extent 7.5 voxels around
    # the grid centre 16 -> [8.5, 23.5] -> voxels 8..23; z: 3.75 -> [12.25, 19.75] -> 12..19.
    occupied = np.argwhere(grid)
    assert occupied.min(0).tolist() == [1, 8, 12]
    assert occupied.max(0).tolist() == [30, 23, 19]
    assert grid.sum() == 30 * 16 * 8  # solid: the whole index box
    # Voxel centres map back into the box (within half a voxel for the partial end voxels).
    world = _centres(R, center, scale)[grid]
    lo, hi = box.bounds
    assert (world >= lo - h / 2 - 1e-9).all() and (world <= hi + h / 2 + 1e-9).all()
    inner = world[(world[:, 0] > lo[0]) & (world[:, 0] < hi[0])]
    assert len(inner) == len(world)  # along x the centres are strictly inside
    # The same centres from the formula world = center + h * (idx - (R-1)/2).
    idx = occupied.astype(float)
    assert np.allclose(np.asarray(center) + h * (idx - (R - 1) / 2), world)


def test_box_shell_is_hollow() -> None:
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    grid, *_ , fill, note = voxelize(box, 32, "shell")
    assert fill == "shell" and "requested" in note
    assert grid.sum() == 30 * 16 * 8 - 28 * 14 * 6
    assert not grid[16, 16, 16]


# ------------------------------------------------------------------ shell vs solid, auto


def test_sphere_solid_shell_auto() -> None:
    R = 32
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    solid, center, scale, fill, note = voxelize(sphere, R, "auto")
    assert fill == "solid" and note.startswith("auto picked solid")
    h = 2 * scale / R
    dist = np.linalg.norm(_centres(R, center, scale) - center, axis=-1)
    assert solid[dist < 1.0 - h].all()
    assert not solid[dist > 1.0 + h].any()
    shell, *_ = voxelize(sphere, R, "shell")
    assert not shell[dist < 1.0 - 1.5 * h].any()
    assert shell[np.abs(dist - 1.0) < 0.2 * h].all()
    assert (shell <= solid).all()
    # The shell separates inside from outside: filling its holes gives the solid.
    assert np.array_equal(ndimage.binary_fill_holes(shell), solid)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solid_is_robust_to_rotation(seed: int) -> None:
    """No streaks from rays grazing edges or vertices, whatever the orientation."""
    torus = trimesh.creation.torus(
        major_radius=1.0, minor_radius=0.4, major_sections=24, minor_sections=12
    )
    rot = np.eye(4)
    rot[:3, :3] = Rotation.random(random_state=seed).as_matrix()
    torus.apply_transform(rot)
    grid, *_ , _fill, _ = voxelize(torus, 40, "solid")
    shell, *_ = voxelize(torus, 40, "shell")
    assert np.array_equal(grid, ndimage.binary_fill_holes(shell))


def test_open_plane_is_flat() -> None:
    plane = trimesh.Trimesh(
        [[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], [[0, 1, 2], [0, 2, 3]], process=False
    )
    grid, *_ , fill, note = voxelize(plane, 32, "auto")
    assert fill == "shell" and "flat" in note
    assert grid.sum() == 30 * 30  # one layer
    assert np.unique(np.argwhere(grid)[:, 2]).size == 1
    with pytest.raises(InputError, match=r"mesh is flat \(encloses no volume\): use --fill shell"):
        voxelize(plane, 32, "solid")
    shell, *_ = voxelize(plane, 32, "shell")
    assert np.array_equal(shell, grid)


def test_open_wavy_sheet_is_shell() -> None:
    sheet = _open_sheet()
    _grid, *_ , fill, note = voxelize(sheet, 32, "auto")
    assert fill == "shell" and "open" in note
    with pytest.raises(InputError, match="encloses no volume.*--fill shell"):
        voxelize(sheet, 32, "solid")


def test_open_hemisphere_is_shell() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    cup = sphere.submesh([np.flatnonzero(sphere.triangles_center[:, 2] < 0.1)], append=True)
    assert not cup.is_watertight
    _, *_, fill, _ = voxelize(cup, 32, "auto")
    assert fill == "shell"


def test_sphere_with_hole_still_fills() -> None:
    """A closed surface with a hole (like a teapot's lid gap) is filled by the ray vote."""
    R = 32
    sphere = trimesh.creation.icosphere(subdivisions=3)
    keep = np.ones(len(sphere.faces), bool)
    keep[np.argsort(-sphere.triangles_center[:, 2])[:6]] = False  # open the top
    holey = sphere.submesh([np.flatnonzero(keep)], append=True)
    assert not holey.is_watertight
    grid, _center, _scale, fill, note = voxelize(holey, R, "auto")
    assert fill == "solid" and "not watertight" in note
    full, *_ = voxelize(sphere, R, "solid")
    assert np.count_nonzero(grid != full) < 0.01 * full.sum()


def test_overlapping_parts_union_and_inverted_normals() -> None:
    a = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    b = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    b.apply_translation([1.0, 0, 0])
    both = trimesh.util.concatenate([a, b])
    grid, center, scale, _fill, _ = voxelize(both, 32, "solid")
    # The lens where the spheres overlap is inside (parity alone would leave it empty).
    R = 32
    idx = np.round((np.array([0.5, 0.0, 0.0]) - center) / (2 * scale / R) + (R - 1) / 2).astype(int)
    assert grid[tuple(idx)]
    inverted = a.copy()
    inverted.invert()
    g1, *_ = voxelize(a, 32, "solid")
    g2, *_ = voxelize(inverted, 32, "solid")
    assert np.array_equal(g1, g2)


def test_sliver_triangle_is_covered() -> None:
    """A long thin triangle leaves no gap: its voxels form one 26-connected chain, and every
    voxel its centre line crosses for more than half a voxel is marked (the sampling may
    skip a voxel whose corner is only grazed)."""
    R = 64
    far = np.array([10.0, 3.0, 7.0005])
    tri = trimesh.Trimesh([[0, 0, 0], [10, 3, 7], [10, 3.001, 7.001]], [[0, 1, 2]], process=False)
    grid, center, scale, *_ = voxelize(tri, R, "shell")
    h = 2 * scale / R
    _, n_parts = ndimage.label(grid, structure=np.ones((3, 3, 3)))
    assert n_parts == 1
    t = np.linspace(0, 0.999, 20000)[:, None]  # the far end lies on the bbox face
    idx = np.floor((t * far - center) / h + R / 2).astype(int)
    voxels, counts = np.unique(idx, axis=0, return_counts=True)
    length = counts * np.linalg.norm(far) / len(t) / h  # path length in each voxel, in voxels
    assert grid[tuple(voxels[length > 0.5].T)].all()
    # Nothing far from the sliver is marked.
    marked = (np.argwhere(grid) + 0.5 - R / 2) * h + center
    d = np.linalg.norm(np.cross(marked, far / np.linalg.norm(far)), axis=1)
    assert d.max() < np.sqrt(3) * h


def test_resolution_512_shell_bounds() -> None:
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    grid, *_ = voxelize(box, 512, "shell")
    occupied = np.argwhere(grid)
    assert occupied.min(0).tolist() == [1, 1, 1] and occupied.max(0).tolist() == [510, 510, 510]


@pytest.mark.slow
def test_resolution_512_solid() -> None:
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    grid, *_ = voxelize(box, 512, "solid")
    assert grid.sum() == 510**3


# ------------------------------------------------------------------ refusals


def test_refusals() -> None:
    box = trimesh.creation.box()
    with pytest.raises(UsageError, match="resolution 1100 is outside 16..1024"):
        voxelize(box, 1100)
    with pytest.raises(UsageError, match="resolution 8 is outside"):
        voxelize(box, 8)
    with pytest.raises(UsageError, match="fill 'filled'"):
        voxelize(box, 32, "filled")
    point = trimesh.Trimesh([[1, 1, 1]] * 3, [[0, 1, 2]], process=False)
    with pytest.raises(InputError, match="zero size"):
        voxelize(point, 32)
    with pytest.raises(InputError, match="no faces"):
        voxelize(trimesh.Trimesh(np.eye(3), np.zeros((0, 3), int), process=False), 32)
    nan = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]], [[0, 1, 2]], process=False)
    with pytest.raises(InputError, match="NaN"):
        voxelize(nan, 32)


def test_deterministic() -> None:
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3)
    a, *_ = voxelize(mesh, 48)
    b, *_ = voxelize(mesh, 48)
    assert np.array_equal(a, b)


# ------------------------------------------------------------------ real meshes


@pytest.mark.parametrize(
    ("name", "fill"),
    [
        ("76277.obj", "solid"),
        ("teapot.obj", "solid"),
        ("cow.obj", "solid"),
        ("alligator.obj", "shell"),  # a flat 2-D mesh
    ],
)
def test_shared_meshes(name: str, fill: str) -> None:
    path = SHARED_MESHES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    mesh = trimesh.load_mesh(path, process=False)
    grid, _center, _scale, fill_used, note = voxelize(mesh, 48)
    assert fill_used == fill, note
    assert grid.any() and not grid[[0, -1]].any() if fill == "solid" else grid.any()


def test_engine_assembly_at_128() -> None:
    """121k faces in 1410 parts voxelize solid (speed: see the README, not asserted)."""
    path = SHARED_MESHES / "2CylinderEngine.glb"
    if not path.exists():
        pytest.skip(f"{path} not present")
    mesh = trimesh.load_scene(path).to_mesh()
    grid, *_ , fill, _ = voxelize(mesh, 128)
    assert fill == "solid" and grid.sum() > 50_000
