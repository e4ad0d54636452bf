"""The one frame (index <-> normalised <-> world) and the one meshing function.

The last tests run every path that writes or measures a mesh made from a grid (decode to a
mesh file, eval's reference surface, the bench's lossless baseline, render of a voxel file
and of a ``.occ``) on a solid ball and check the mesh faces outwards: positive volume.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from hypothesis import given
from hypothesis import strategies as st

from occcodec import decoder
from occcodec.errors import UsageError
from occcodec.format import container
from occcodec.format.arch import parse_arch
from occcodec.format.header import build_header
from occcodec.format.quant import quantize
from occcodec.shapes import frame
from occcodec.shapes.meshing import LOGIT_CLIP, grid_surface, logit_levels_inplace
from occcodec.shapes.voxelize import Fill

dims = st.integers(1, 40)
shapes = st.tuples(dims, dims, dims)


def spec_point(ijk: tuple[float, float, float], shape: tuple[int, int, int]) -> list[float]:
    """formats/occ-v1.md 10.1, written out per axis in plain Python floats."""
    m = max(shape)
    return [(i - (n - 1) / 2) / (m / 2) for i, n in zip(ijk, shape, strict=True)]


# ------------------------------------------------------------------------------ frame


@given(shapes, st.data())
def test_index_to_normalized_is_the_spec_formula(shape: tuple[int, int, int],
                                                 data: st.DataObject) -> None:
    ijk = tuple(data.draw(st.integers(0, n - 1)) for n in shape)
    got = frame.index_to_normalized(np.array(ijk), shape)
    assert got.tolist() == spec_point(ijk, shape)  # exact: same operations, float64
    axes = frame.axis_coords(shape)
    assert [a.dtype for a in axes] == [np.float32] * 3
    assert [float(axes[a][ijk[a]]) for a in range(3)] == [
        float(np.float32(v)) for v in spec_point(ijk, shape)]


def test_frame_by_hand() -> None:
    # m = 4: p = (i - (n - 1) / 2) / 2
    p = frame.index_to_normalized([[0, 0, 0], [3, 1, 1]], (4, 2, 2))
    np.testing.assert_array_equal(p, [[-0.75, -0.25, -0.25], [0.75, 0.25, 0.25]])
    world = frame.index_to_world([3, 1, 1], (4, 2, 2), center=(10.0, 0.0, -1.0), scale=2.0)
    np.testing.assert_array_equal(world, [11.5, 0.5, -0.5])
    assert frame.voxel_size(2.0, (4, 2, 2)) == 1.0  # 2 * scale / m


@given(shapes, st.tuples(*[st.floats(-1e3, 1e3)] * 3), st.floats(1e-3, 1e3),
       st.lists(st.tuples(*[st.floats(-2.0, 50.0)] * 3), min_size=1, max_size=8))
def test_index_world_round_trip(shape: tuple[int, int, int], center: tuple[float, ...],
                                scale: float, points: list[tuple[float, ...]]) -> None:
    gf = frame.GridFrame(shape, center, scale)  # type: ignore[arg-type]
    ijk = np.array(points)
    back = gf.world_to_index(gf.index_to_world(ijk))
    np.testing.assert_allclose(back, ijk, rtol=0, atol=1e-9 * (1 + np.abs(center).max() / scale))
    p = frame.index_to_normalized(ijk, shape)
    np.testing.assert_allclose(frame.normalized_to_index(p, shape), ijk, rtol=0, atol=1e-12)


def test_neighbouring_voxels_are_one_voxel_size_apart() -> None:
    gf = frame.GridFrame((5, 9, 3), (1.0, -2.0, 3.0), 0.7)
    a, b = gf.index_to_world([[2, 4, 1], [2, 5, 1]])
    assert np.linalg.norm(b - a) == pytest.approx(gf.voxel_size)


def test_voxel_space_frame_puts_voxel_i_on_i_to_i_plus_1() -> None:
    gf = frame.voxel_space_frame((20, 18, 24))
    np.testing.assert_allclose(gf.index_to_world([[0, 0, 0], [19, 17, 23]]),
                               [[0.5, 0.5, 0.5], [19.5, 17.5, 23.5]])
    assert gf.voxel_size == 1.0


def test_limits_and_fill_names() -> None:
    # meshes train on points, so --resolution goes to 1024; voxel files stop at MAX_DIM
    assert frame.check_encode_resolution(16) == 16 and frame.check_encode_resolution(1024) == 1024
    with pytest.raises(UsageError, match="resolution 1025 is outside 16..1024"):
        frame.check_encode_resolution(1025)
    assert frame.MAX_DIM == 512
    with pytest.raises(UsageError, match="is not an integer"):
        frame.check_encode_resolution(True)
    assert frame.check_decode_resolution(1024) == 1024
    with pytest.raises(UsageError, match="decode resolution 15 is outside 16..1024"):
        frame.check_decode_resolution(15)
    assert frame.check_fill("shell") == "shell"
    with pytest.raises(UsageError, match="fill 'full' is not one of auto, solid, shell"):
        frame.check_fill("full")
    assert typing.get_args(Fill) == frame.FILL_MODES


# ---------------------------------------------------------------------------- meshing


def ball(n: int = 20, radius: float = 7.0) -> np.ndarray:
    c = (n - 1) / 2.0
    idx = np.indices((n, n, n), dtype=np.float64)
    return ((idx - c) ** 2).sum(axis=0) <= radius**2


def volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume by the divergence theorem (positive when faces wind outwards)."""
    a, b, c = (verts[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def test_ball_grid_mesh_faces_outwards() -> None:
    g = ball()
    verts, faces = grid_surface(g, center=(0.0, 0.0, 0.0), scale=1.0)
    assert verts.dtype == np.float64 and faces.dtype == np.int64
    # 20^3 grid, longest side [-1, 1]: the voxel count times (2/20)^3 is the volume
    # the 0.5-level surface encloses, within the staircase's smoothing.
    vol = volume(verts, faces)
    assert vol == pytest.approx(g.sum() * (2 / 20) ** 3, rel=0.05)
    assert vol > 0
    assert trimesh.Trimesh(verts, faces, process=True).is_watertight


def test_logit_fields_are_meshed_linearly_in_the_logit() -> None:
    idx = np.indices((16, 16, 16), dtype=np.float64)
    r = np.sqrt(((idx - 7.5) ** 2).sum(axis=0))
    # logits: inside where r < 5, as steep as trained networks are (8 per voxel)
    z = (8.0 * (5.0 - r)).astype(np.float32)
    z[0, 0, 0] = -80.0  # beyond the clip: meshes as -LOGIT_CLIP (far from the surface)
    q = (0.5 + np.clip(z, -LOGIT_CLIP, LOGIT_CLIP) / (2 * LOGIT_CLIP)).astype(np.float32)
    v1, f1 = grid_surface(z, (0, 0, 0), 1.0, logits=True)
    v2, f2 = grid_surface(q, (0, 0, 0), 1.0)
    assert volume(v1, f1) > 0 and np.array_equal(f1, f2)
    np.testing.assert_allclose(v1, v2, atol=1e-6)
    assert np.array_equal(logit_levels_inplace(z.copy()) > 0.5, z > 0)
    # r = 5 voxels in a 16-voxel cube spanning [-1, 1]: radius 5 / 8. z is a scaled
    # distance, so its linear crossing lies on the sphere up to the chords' sag;
    # interpolating P = sigmoid(z), saturated a voxel away, pulls vertices towards the
    # edges' midpoints.
    err_logit = np.abs(np.linalg.norm(v1, axis=1) - 5 / 8)
    p = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    v3, _ = grid_surface(p, (0, 0, 0), 1.0)
    err_prob = np.abs(np.linalg.norm(v3, axis=1) - 5 / 8)
    assert err_logit.max() < 0.005 and err_logit.mean() < 0.5 * err_prob.mean()


def test_nan_logits_mesh_as_empty_voxels() -> None:
    """A damaged file's network can give NaN (inf - inf): the occupancy rule reads it as
    empty (NaN > 0 is False), and so does the mesher: no NaN vertex (it once crashed the
    decoder's edge lookup with an IndexError, found by tests/test_fuzz.py)."""
    idx = np.indices((12, 12, 12), dtype=np.float64)
    z = (8.0 * (4.0 - np.sqrt(((idx - 5.5) ** 2).sum(axis=0)))).astype(np.float32)
    nan = z.copy()
    nan[z < -16.0] = np.nan  # two voxels or more outside the ball: on no surface edge
    levels = logit_levels_inplace(nan.copy())
    assert np.isfinite(levels).all() and np.array_equal(levels > 0.5, z > 0)
    assert levels[z < -16.0].max() == 0.0
    v1, f1 = grid_surface(nan, (0, 0, 0), 1.0, logits=True)
    v2, f2 = grid_surface(z, (0, 0, 0), 1.0, logits=True)
    assert np.isfinite(v1).all() and np.array_equal(f1, f2) and np.allclose(v1, v2)


def test_shapes_touching_the_border_close_and_empty_grids_are_empty() -> None:
    full = np.ones((6, 5, 4), dtype=bool)
    verts, faces = grid_surface(full, center=(1.0, 2.0, 3.0), scale=3.0)
    mesh = trimesh.Trimesh(verts, faces, process=True)
    assert mesh.is_watertight and mesh.volume > 0
    # the surface lies half a voxel outside the outer centres: the whole box
    np.testing.assert_allclose(mesh.bounds, [[-2.0, -0.5, 1.0], [4.0, 4.5, 5.0]])
    for empty, logits in ((np.zeros((4, 4, 4), bool), False),
                          (np.full((4, 4, 4), -3.0, np.float32), True)):
        v, f = grid_surface(empty, (0, 0, 0), 1.0, logits=logits)
        assert v.shape == (0, 3) and f.shape == (0, 3)
    with pytest.raises(ValueError, match="3-D"):
        grid_surface(np.ones((4, 4)), (0, 0, 0), 1.0)


# ------------------------------------------------- every mesh path: positive volume


def ball_occ(path: Path, center: tuple[float, float, float], scale: float) -> Path:
    """A hand-made ``.occ`` whose network is a ball: a polytope of 32 faces at radius 0.6.

    ``logit = 1 - 20 * sum_k relu(n_k . p - 0.6)`` over 32 unit directions ``n_k``: positive
    inside the polytope, negative a little outside it. No training needed.
    """
    k = np.arange(32) + 0.5
    polar, azimuth = np.arccos(1 - 2 * k / 32), np.pi * (1 + 5**0.5) * k
    normals = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar),
                        np.cos(polar)], axis=1)
    arch = parse_arch("32:relu")
    weights = [(normals.T.astype(np.float32), np.full(32, -0.6, np.float32)),
               (np.full((32, 1), -20.0, np.float32), np.ones(1, np.float32))]
    raw = quantize(weights, "fp32")
    header = build_header(
        encoder="tests/test_frame_meshing.py", arch=arch, grid=(24, 24, 24), center=center,
        scale=scale, fill="solid", quant="fp32", raw_bytes=len(raw), source_kind="mesh",
        source_sha256=bytes(32), options={}, metrics={})
    path.write_bytes(container.pack(header, raw))
    return path


def test_every_mesh_path_gives_a_solid_ball_positive_volume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import run_cli

    from occcodec.encoder.pipeline import EncodeOptions
    from occcodec.tools import bench, render
    from occcodec.tools.evaluate import grid_mesh
    from occcodec.tools.pictures import render_file

    volumes: dict[str, float] = {}
    center, scale = (5.0, -3.0, 2.0), 2.5

    # decode: the CLI's mesh output, read back from the file
    occ = ball_occ(tmp_path / "ball.occ", center, scale)
    assert run_cli(capsys, "decode", occ, "-o", tmp_path / "ball.ply")[0] == 0
    decoded = trimesh.load(tmp_path / "ball.ply", process=False)
    volumes["decode .ply"] = decoded.volume
    # the polytope has inradius 0.6 (normalised): in world units at least (0.6 * scale)^3 * 4
    assert decoded.volume > 4 * (0.6 * scale) ** 3
    volumes["decode .ply, resolution 40"] = trimesh.Trimesh(
        *decoder.mesh_arrays(decoder.read(occ), 40)).volume

    # eval: a voxel-grid reference's surface
    g = ball()
    volumes["eval grid_mesh"] = grid_mesh(g, center, scale).volume

    # bench: the lossless zstd baseline meshes the decoded grid
    from occcodec.tools.bench.baselines import ZstdGrid
    from occcodec.tools.bench.context import Context

    seen: list[Any] = []
    ctx = Context(tmp_path, bench.BenchSettings(encode=EncodeOptions(resolution=20),
                                                surface_points=500))
    real_compare = ctx.compare
    monkeypatch.setattr(ctx, "compare",
                        lambda ref, grid, mesh: seen.append(mesh) or real_compare(ref, grid, mesh))
    sphere = tmp_path / "sphere.stl"
    trimesh.creation.icosphere(subdivisions=2, radius=3.0).export(sphere)
    from occcodec.tools.bench.runner import _Runner

    runner = _Runner(tmp_path, ctx.settings, print)
    ZstdGrid().run(runner.load(sphere, "sphere"), ctx, {})
    volumes["bench zstd"] = seen[0].volume

    # render: a voxel file and a .occ, as the meshes handed to the rasteriser
    rendered: list[Any] = []
    monkeypatch.setattr(render, "render_mesh",
                        lambda mesh, *a, **k: rendered.append(mesh) or np.zeros((4, 4, 3), np.uint8))
    np.savez_compressed(tmp_path / "ball.npz", occupancy=g)
    render_file(tmp_path / "ball.npz", tmp_path / "npz.png")
    render_file(occ, tmp_path / "occ.png")
    volumes["render .npz"], volumes["render .occ"] = (m.volume for m in rendered)

    assert all(v > 0 for v in volumes.values()), volumes


def test_write_ply_matches_trimesh_binary_layout(tmp_path: Path) -> None:
    """The decoder's chunked PLY writer: trimesh's binary layout byte for byte after the
    header (float32 vertices, uchar-counted int faces), in chunks smaller than the mesh."""
    import trimesh

    from occcodec import decoder

    rng = np.random.default_rng(5)
    verts = rng.normal(size=(2_500, 3)) * 10.0
    faces = rng.integers(0, len(verts), size=(4_001, 3))
    ours, theirs = tmp_path / "a.ply", tmp_path / "b.ply"
    old = decoder._PLY_CHUNK
    decoder._PLY_CHUNK = 1_000
    try:
        decoder.write_ply(ours, verts, faces)
    finally:
        decoder._PLY_CHUNK = old
    trimesh.Trimesh(verts, faces, process=False).export(theirs)
    a, b = ours.read_bytes(), theirs.read_bytes()
    end = b"end_header\n"
    assert a[a.index(end) + len(end):] == b[b.index(end) + len(end):]
    back = trimesh.load(ours, process=False)
    np.testing.assert_array_equal(back.faces, faces)
    np.testing.assert_allclose(back.vertices, verts.astype(np.float32))
    decoder.write_ply(tmp_path / "empty.ply", np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    assert len(trimesh.load(tmp_path / "empty.ply", process=False, force="mesh").faces) == 0
