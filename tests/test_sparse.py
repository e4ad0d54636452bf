"""Sparse coarse-to-fine decoding equals the dense decoder voxel for voxel and face for face."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from occcodec import decoder, sparse
from occcodec.errors import UsageError
from occcodec.format import network
from occcodec.format.arch import Arch, Layer
from occcodec.format.network import Weights
from occcodec.shapes import frame


def _f32(*arrays: object) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float32) for a in arrays)


def thin_plate(shape: tuple[int, int, int], i0: int, k: float) -> tuple[Arch, Weights]:
    """``z = c - k |x - x0|``: occupied only in the one voxel layer ``i == i0``."""
    x0 = float(frame.axis_coords(shape)[0][i0])
    h = 2.0 / max(shape)
    arch = Arch((Layer(2, "relu"),))
    w1, b1 = _f32([[1, -1], [0, 0], [0, 0]], [-x0, x0])
    w2, b2 = _f32([[-k], [-k]], [k * 0.3 * h])
    return arch, [(w1, b1), (w2, b2)]


def thin_rod(shape: tuple[int, int, int], i0: int, j0: int, k: float) -> tuple[Arch, Weights]:
    """``z = c - k (|x - x0| + |y - y0|)``: a rod along z, one voxel thick."""
    x0 = float(frame.axis_coords(shape)[0][i0])
    y0 = float(frame.axis_coords(shape)[1][j0])
    h = 2.0 / max(shape)
    arch = Arch((Layer(4, "relu"),))
    w1, b1 = _f32([[1, -1, 0, 0], [0, 0, 1, -1], [0, 0, 0, 0]], [-x0, x0, -y0, y0])
    w2, b2 = _f32([[-k]] * 4, [k * 0.3 * h])
    return arch, [(w1, b1), (w2, b2)]


def smooth_blob(seed: int = 3) -> tuple[Arch, Weights]:
    """A bumpy ball: ``4 (cos(pi x) + cos(pi y) + cos(pi z) - 1.8)`` plus small random units.

    Hidden unit 0 of each layer carries the cosine sum (kept positive, where relu and elu are
    the identity); the other units are random and enter the output with small weights.
    """
    rng = np.random.default_rng(seed)
    arch = Arch((Layer(8, "relu"), Layer(8, "elu")), pe_levels=2)
    w1 = rng.normal(size=(15, 8)) * 0.3
    b1 = np.full(8, 2.0)
    w1[:, :3] = 0.0
    for axis in range(3):
        w1[6 + axis, axis] = 1.0  # feature cos(pi x_axis) (formats/occ-v1.md 9.2)
    w2 = rng.normal(size=(8, 8)) * 0.3
    w2[:, 0] = 0.0
    w2[:3, 0] = 1.0
    b2 = np.full(8, 0.0)
    w3 = rng.normal(size=(8, 1)) * 0.3
    w3[0, 0] = 4.0
    b3 = np.array([4.0 * (-6.0 - 1.8) - 3.0 * float(w3[1:, 0].sum())])
    return arch, [_f32(w1, b1), _f32(w2, b2), _f32(w3, b3)]  # type: ignore[list-item]


def _volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _area(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2.0)


def _dense_mesh(arch: Arch, weights: Weights, shape: tuple[int, int, int],
                refine_steps: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """``decoder.mesh_arrays`` on a hand-made network (unit scale, centre 0); marching cubes
    alone unless ``refine_steps`` says otherwise (None: the decoder's default)."""
    header = SimpleNamespace(grid=shape, arch=arch, center=(0.0, 0.0, 0.0), scale=1.0)
    return decoder.mesh_arrays(decoder.Coded(header, weights, None), None,  # type: ignore[arg-type]
                               refine_steps=refine_steps)


#: Vertex agreement with the dense mesh, in voxels. The sparse evaluator's 4096-row
#: products and the dense decoder's plane-sized ones (25,600 rows at 160^3) round some
#: logits 1 ulp apart; on the smooth blob at 160^3 that moved one vertex by 1.7e-3 voxel
#: (an edge along which P changes very little). 32k-row chunks happened to round as the
#: dense path there, but evaluated 1.5x slower.
VERTEX_TOL = 4e-3


def assert_same_mesh(dense: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray],
                     tol: float) -> None:
    """Same vertex set and the same oriented faces once vertices are matched.

    ``tol``: BLAS rounds a row's dot product differently with the matrix's size, so the
    logits differ from the dense ones by about 1 ulp; where P changes by only ~1e-3 along an
    edge this moves the vertex by ~1e-4 voxel. :data:`VERTEX_TOL` voxels is what the tests
    allow.
    """
    (dv, df), (sv, sf) = dense, got
    assert len(sv) == len(dv) and len(sf) == len(df)
    dist, match = cKDTree(sv).query(dv)
    assert dist.max() <= tol
    assert len(np.unique(match)) == len(dv)  # a bijection
    mapped = match[df]

    def canon(f: np.ndarray) -> np.ndarray:
        r = np.argmin(f, axis=1)  # rotate each face to its smallest index: keeps orientation
        f = np.stack([f[np.arange(len(f)), (r + i) % 3] for i in range(3)], axis=1)
        return f[np.lexsort(f.T[::-1])]

    np.testing.assert_array_equal(canon(mapped), canon(sf))


def _check(arch: Arch, weights: Weights, shape: tuple[int, int, int], **kw: object) -> None:
    f = sparse.sparse_field(arch, weights, shape, **kw)  # type: ignore[arg-type]
    dense_z = network.logit_grid(arch, weights, frame.axis_coords(shape))
    np.testing.assert_array_equal(f.voxels(), dense_z > 0)
    np.testing.assert_array_equal(f.packed_voxels(), np.packbits(dense_z > 0, axis=-1))
    verts, faces = sparse.field_mesh(f)
    world = sparse.to_world(verts, shape, (0.0, 0.0, 0.0), 1.0)
    dense = _dense_mesh(arch, weights, shape)
    if not len(dense[1]):
        assert not len(faces)
        return
    assert len(np.unique(world, axis=0)) == len(world)  # stitched: no duplicate vertices
    assert _volume(world, faces) > 0  # outward faces
    assert_same_mesh(dense, (world, faces), tol=VERTEX_TOL * 2.0 / max(shape))
    # the logits differ from the dense ones by about 1 ulp (BLAS rounds by matrix size), and
    # stacked marching cubes rounds x inside a block to 2^-13 voxel: the volume moves by at
    # most the area times that
    assert abs(_volume(world, faces) - _volume(*dense)) <= (
        1e-5 * abs(_volume(*dense)) + _area(world, faces) * 2.0**-13 * 2.0 / max(shape))
    # the decoder's own meshes, vertices moved to the network's crossings, agree as well
    refined = sparse.field_surface(f, arch, weights, (0.0, 0.0, 0.0), 1.0)
    assert_same_mesh(_dense_mesh(arch, weights, shape, None), refined,
                     tol=VERTEX_TOL * 2.0 / max(shape))


@pytest.mark.parametrize("rule", sparse.RULES)
@pytest.mark.parametrize("shape", [(64, 64, 64), (40, 57, 33)])
def test_thin_plate_and_rod_exact(rule: str, shape: tuple[int, int, int]) -> None:
    # planes at indices that are not on any coarse lattice (odd), far from and at the border
    for i0 in (21, 0, shape[0] - 1):
        _check(*thin_plate(shape, i0, k=40.0), shape, rule=rule, stride=8)
    _check(*thin_rod(shape, 13, 27, k=40.0), shape, rule=rule, stride=8)


def test_thin_plate_is_found_between_coarse_samples() -> None:
    shape = (64, 64, 64)
    f = sparse.sparse_field(*thin_plate(shape, 21, k=40.0), shape, stride=16)
    vox = f.voxels()
    assert vox[21].all() and vox.sum() == 64 * 64  # exactly the plate
    assert f.evaluated < np.prod(shape)


@pytest.mark.parametrize("shape", [(32, 32, 32), (48, 36, 60), (96, 96, 96)])
@pytest.mark.parametrize("stride", [4, 8, None])
def test_smooth_network_matches_dense(shape: tuple[int, int, int], stride: int | None) -> None:
    _check(*smooth_blob(), shape, stride=stride)


def test_sparse_evaluates_far_fewer_points() -> None:
    shape = (96, 96, 96)
    f = sparse.sparse_field(*smooth_blob(), shape, stride=8)
    assert 0 < f.evaluated < 0.5 * np.prod(shape)
    assert sum(lv.skipped for lv in f.levels) > 0


@pytest.mark.parametrize("resolution", [20, 48, 64])
def test_real_encode_matches_decoder(coded_box: Path, resolution: int) -> None:
    coded = decoder.read(coded_box)
    h = coded.header
    shape = decoder.decode_shape(coded, resolution)
    f = sparse.sparse_field(h.arch, coded.weights, shape)
    np.testing.assert_array_equal(f.voxels(), decoder.voxels(coded, resolution))
    verts, faces = sparse.sparse_mesh(h.arch, coded.weights, shape, h.center, h.scale)
    dense = decoder.mesh_arrays(coded, resolution)
    assert_same_mesh(dense, (verts, faces), tol=VERTEX_TOL * h.scale * 2.0 / max(shape))
    assert _volume(verts, faces) > 0


def test_lipschitz_bound_holds_on_a_dense_grid() -> None:
    arch, weights = smooth_blob()
    shape = (48, 48, 48)
    z = network.logit_grid(arch, weights, frame.axis_coords(shape)).astype(np.float64)
    h = 2.0 / max(shape)
    steepest = max(np.abs(np.diff(z, axis=a)).max() for a in range(3)) / h
    assert steepest <= sparse.lipschitz_bound(arch, weights)


def test_empty_and_full_fields() -> None:
    arch = Arch((Layer(2, "relu"),))
    for bias in (-5.0, 5.0):
        weights: Weights = [_f32(np.zeros((3, 2)), np.zeros(2)), _f32(np.zeros((2, 1)), [bias])]
        _check(arch, weights, (30, 20, 25), stride=4)


def test_drop_specks_removes_small_components() -> None:
    import trimesh

    big = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    small.apply_translation((3.0, 0.0, 0.0))
    both = trimesh.util.concatenate([big, small])
    verts, faces = np.asarray(both.vertices), np.asarray(both.faces, dtype=np.int64)
    v2, f2, removed = sparse.drop_specks(verts, faces, 1e-3)
    assert removed == 1 and len(f2) == len(big.faces) and len(v2) == len(big.vertices)
    assert _volume(v2, f2) == pytest.approx(_volume(np.asarray(big.vertices),
                                                    np.asarray(big.faces)))
    assert sparse.drop_specks(verts, faces, 0.0)[2] == 0
    # counting: the speck is below the fraction, a second big sphere is not
    assert sparse.count_components(verts, faces, 1e-3) == 1
    assert sparse.count_components(verts, faces, 0.0) == 2
    other = big.copy()
    other.apply_translation((5.0, 0.0, 0.0))
    three = trimesh.util.concatenate([big, small, other])
    assert sparse.count_components(np.asarray(three.vertices),
                                   np.asarray(three.faces, dtype=np.int64)) == 2
    assert sparse.count_components(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)) == 0


def test_a_closed_speck_beside_an_open_body_is_dropped() -> None:
    # The body has a crack (one face missing: open), the speck is closed: the speck is
    # measured against the body, not against the largest closed component (itself).
    import trimesh

    big = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    cracked = trimesh.Trimesh(big.vertices, big.faces[1:], process=False)
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    small.apply_translation((3.0, 0.0, 0.0))
    both = trimesh.util.concatenate([cracked, small])
    verts, faces = np.asarray(both.vertices), np.asarray(both.faces, dtype=np.int64)
    _, f2, removed = sparse.drop_specks(verts, faces, 1e-3)
    assert removed == 1 and len(f2) == len(cracked.faces)
    assert sparse.count_components(verts, faces) == 1
    # a second sphere as large as the body stays, closed or not
    other = big.copy()
    other.apply_translation((5.0, 0.0, 0.0))
    three = trimesh.util.concatenate([cracked, small, other])
    assert sparse.count_components(np.asarray(three.vertices),
                                   np.asarray(three.faces, dtype=np.int64)) == 2


def test_bad_options_raise_usage_errors() -> None:
    arch, weights = smooth_blob()
    with pytest.raises(UsageError):
        sparse.sparse_field(arch, weights, (16, 16, 16), rule="guess")
    with pytest.raises(UsageError):
        sparse.sparse_field(arch, weights, (16, 16, 16), stride=6)
    with pytest.raises(UsageError):
        sparse.drop_specks(np.zeros((3, 3)), np.array([[0, 1, 2]]), 1.5)


def _coded(arch: Arch, weights: Weights, grid: tuple[int, int, int]) -> decoder.Coded:
    header = SimpleNamespace(grid=grid, arch=arch, center=(0.0, 0.0, 0.0), scale=1.0)
    return decoder.Coded(header, weights, None)  # type: ignore[arg-type]


def test_decoder_picks_sparse_above_128_and_matches_dense() -> None:
    coded = _coded(*smooth_blob(), (64, 64, 64))
    assert not decoder.use_sparse((128, 128, 128)) and decoder.use_sparse((96, 160, 96))
    dense = decoder.voxels(coded, 160, sparse=False)
    np.testing.assert_array_equal(decoder.voxels(coded, 160), dense)
    sv, sf = decoder.mesh_arrays(coded, 160)
    dv, df = decoder.mesh_arrays(coded, 160, sparse=False)
    assert_same_mesh((dv, df), (sv, sf), tol=VERTEX_TOL * 2.0 / 160)


def test_sparse_decode_of_1024_passes_the_memory_limit_that_dense_fails() -> None:
    from occcodec.errors import LimitError

    coded = _coded(*smooth_blob(), (128, 128, 128))
    with pytest.raises(LimitError, match="memory"):
        decoder.decode_shape(coded, 1024, decoder.DENSE_MESH_BYTES)
    assert decoder.decode_shape(coded, 1024, 0, sparse=True) == (1024, 1024, 1024)
    assert decoder.decode_shape(coded, 1024, 1, sparse=True) == (1024, 1024, 1024)


def test_sparse_work_is_checked_as_points_are_evaluated() -> None:
    from occcodec.errors import LimitError
    from occcodec.format import limits

    arch, weights = smooth_blob()
    shape = (96, 96, 96)
    used = sparse.sparse_field(arch, weights, shape).evaluated * arch.params
    assert used < np.prod(shape) * arch.params  # far below the dense work
    with limits.raised(work=used):
        sparse.sparse_field(arch, weights, shape)
    with limits.raised(work=used - 1), pytest.raises(LimitError, match="work"):
        sparse.sparse_field(arch, weights, shape)


def test_mesh_arrays_drops_specks_on_request() -> None:
    # the blob's mesh is one closed component: the option is plumbed through and keeps it
    # (the removal itself: test_drop_specks_removes_small_components)
    coded = _coded(*smooth_blob(), (48, 48, 48))
    v0, f0 = decoder.mesh_arrays(coded)
    v1, f1 = decoder.mesh_arrays(coded, drop_specks=decoder.SPECK_FRACTION)
    assert len(f1) <= len(f0) and len(f1) > 0
    assert _volume(v1, f1) == pytest.approx(_volume(v0, f0), rel=1e-3)
    with pytest.raises(UsageError):
        decoder.mesh_arrays(coded, drop_specks=2.0)


def sharp_plate(shape: tuple[int, int, int], i0: int, k: float, peak: float
                ) -> tuple[Arch, Weights]:
    """:func:`thin_plate` with the logit at the plate ``peak * k * h`` (a narrow kink)."""
    x0 = float(frame.axis_coords(shape)[0][i0])
    h = 2.0 / max(shape)
    arch = Arch((Layer(2, "relu"),))
    w1, b1 = _f32([[1, -1], [0, 0], [0, 0]], [-x0, x0])
    w2, b2 = _f32([[-k], [-k]], [k * peak * h])
    return arch, [(w1, b1), (w2, b2)]


def test_fine_safety_finds_a_plate_at_every_position() -> None:
    # a one-voxel plate midway between two samples needs fine_safety >= 1/sqrt(3) (module
    # docstring); 0.6 finds it at every position, 0.5 misses some (the measured margin)
    shape = (64, 64, 64)
    missed = {0.6: 0, 0.5: 0}
    for i0 in range(64):
        arch, weights = sharp_plate(shape, i0, k=160.0, peak=0.05)
        dense = network.logit_grid(arch, weights, frame.axis_coords(shape)) > 0
        for fine in missed:
            f = sparse.sparse_field(arch, weights, shape, stride=8, fine_safety=fine)
            missed[fine] += int((f.voxels() != dense).any())
    assert missed[0.6] == 0
    assert missed[0.5] > 0


def test_inplace_activations_match_the_network() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(size=20000) * s for s in (1e-20, 1e-6, 1e-2, 1, 30)])
    x = np.concatenate([x, -x, [0.0, -0.0, 200.0, -200.0]]).astype(np.float32)
    scratch = np.empty(x.size, dtype=np.float32)
    for name, fn in network.ACTIVATION_FNS.items():
        want = fn(x.copy())
        got = sparse._activate_inplace(x.copy(), name, scratch)
        np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


def test_flood_follows_the_surface_across_a_block_face() -> None:
    # two blocks side by side; the lower one has evaluated a positive point on the shared
    # face, where the upper one's cell has negative corners and fills: the flood copies the
    # value over, refines that cell and evaluates its other new points
    arch, weights = smooth_blob()
    shape = (64, 64, 64)
    evaluate = sparse._Evaluator(arch, weights, shape, [65, 65, 65])
    blocks = np.array([[1, 1, 1], [2, 1, 1]])
    z2 = np.full((2, 9, 9, 9), -np.inf, dtype=np.float32)
    z2[:, ::2, ::2, ::2] = -1.0  # the corners of the edge-2 cells, evaluated
    z2[0, 8, 1, 1] = 0.5  # on the lower block's +x face
    cand = np.zeros((2, 4, 4, 4), dtype=bool)
    cand[1, 0, 0, 0] = True
    pairs = sparse._face_pairs(blocks, (4, 4, 4))
    refined, count = sparse._flood(z2, cand, blocks * 8, 2, np.array(shape), pairs,
                                   evaluate)
    assert refined[1, 0, 0, 0] and refined.sum() >= 1
    assert z2[1, 0, 1, 1] == np.float32(0.5)  # copied, not evaluated again
    assert np.isfinite(z2[1, :3, :3, :3]).all() and count == 18


@pytest.mark.parametrize("net", ["blob", "plate"])
def test_decode_threads_give_the_same_field_bit_for_bit(net: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # small batches and chunks, so that the threads really split the blocks and the points
    monkeypatch.setattr(sparse, "BLOCK_BATCH", 16)
    monkeypatch.setattr(sparse, "EVAL_CHUNK", 64)
    shape = (64, 64, 64)
    arch, weights = smooth_blob() if net == "blob" else thin_plate(shape, 29, 40.0)
    fields = []
    for n in (1, 2, 3):
        with sparse.workers(n):
            assert sparse.worker_count() == n
            fields.append(sparse.sparse_field(arch, weights, shape, stride=8))
    one = fields[0]
    assert len(one.mixed) > 2 * 16  # several batches of blocks
    for other in fields[1:]:
        assert other.evaluated == one.evaluated
        assert np.array_equal(other.label, one.label)
        assert np.array_equal(other.mixed, one.mixed)
        assert np.array_equal(other.values, one.values)
    assert sparse._BLAS_STATE[0] == 0  # every single-thread block closed: BLAS restored
    dense_z = network.logit_grid(arch, weights, frame.axis_coords(shape))
    assert np.array_equal(one.voxels(), dense_z > 0)


def test_decode_threads_setting() -> None:
    with pytest.raises(UsageError, match="threads"):
        with sparse.workers(0):
            pass
    before = sparse.worker_count()
    with sparse.workers(100):
        assert sparse.worker_count() == sparse.MAX_WORKERS
    assert sparse.worker_count() == before


def test_voxel_logits_are_the_dense_decoders() -> None:
    arch, weights = smooth_blob()
    shape = (40, 57, 33)
    dense = network.logit_grid(arch, weights, frame.axis_coords(shape))
    rng = np.random.default_rng(5)
    index = np.stack([rng.integers(0, n, 5000) for n in shape], axis=1)
    got = sparse.voxel_logits(arch, weights, shape, index)
    np.testing.assert_allclose(got, dense[tuple(index.T)], rtol=0, atol=1e-5)
    assert sparse.voxel_logits(arch, weights, shape, np.zeros((0, 3), int)).shape == (0,)
    for bad in (np.array([[40, 0, 0]]), np.array([[0, -1, 0]]), np.zeros((3, 2), int)):
        with pytest.raises(UsageError):
            sparse.voxel_logits(arch, weights, shape, bad)


def _random_net(seed: int) -> tuple[Arch, Weights]:
    """A wiggly random network (3 frequency levels, two swish layers of 16)."""
    rng = np.random.default_rng(seed)
    arch = Arch((Layer(16, "swish"), Layer(16, "swish")), pe_levels=3)
    weights = [_f32(rng.normal(size=(21, 16)) * 1.5, rng.normal(size=16) * 0.5),
               _f32(rng.normal(size=(16, 16)) * 0.6, rng.normal(size=16) * 0.3),
               _f32(rng.normal(size=(16, 1)), [0.3])]
    return arch, weights  # type: ignore[return-value]


@pytest.mark.parametrize("seed", [0, 2])
def test_blocks_set_aside_and_taken_back_give_the_same_field(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no slope margin below the block the refinement misses surface near block
    faces, so blocks set aside before the last level must be taken back (counted); the
    voxels equal those of refining every block, and so does the mesh."""
    taken = []
    conflict = sparse._face_conflict

    def counted(*args: object) -> np.ndarray:
        back = conflict(*args)  # type: ignore[arg-type]
        taken.append(int(back.sum()))
        return back

    monkeypatch.setattr(sparse, "_face_conflict", counted)
    arch, weights = _random_net(seed)
    shape = (64, 64, 64)
    kw = {"fine_safety": 0.0, "fine_margin": 0.0}
    got = sparse.sparse_field(arch, weights, shape, **kw)  # type: ignore[arg-type]
    assert sum(taken) > 0
    every = sparse.sparse_field(arch, weights, shape, set_aside=False, **kw)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got.voxels(), every.voxels())
    np.testing.assert_array_equal(got.mixed, every.mixed)
    assert_same_mesh(sparse.field_mesh(every), sparse.field_mesh(got), tol=VERTEX_TOL)


def test_set_aside_blocks_keep_the_field_exact_on_thin_parts() -> None:
    """Blocks are set aside on the thin-plate networks too (most blocks around a plate
    end with one sign), and the decode still equals the dense one."""
    shape = (64, 64, 64)
    arch, weights = thin_plate(shape, 21, 40.0)
    f = sparse.sparse_field(arch, weights, shape)
    every = sparse.sparse_field(arch, weights, shape, set_aside=False)
    np.testing.assert_array_equal(f.voxels(), every.voxels())
    _check(arch, weights, shape)


def test_refined_vertices_sit_on_the_network_crossing_of_their_edge() -> None:
    """Marching cubes interpolates the logit linearly; refine_crossings moves each vertex
    along its lattice edge to the network's own zero crossing: the same triangles, every
    vertex still on its edge, and the logit there far nearer 0."""
    gentle_arch, gentle = smooth_blob()
    shape = (48, 48, 48)
    center, scale = (0.5, -1.0, 2.0), 3.0
    # the blob's logit changes by less than REFINE_SPAN across a voxel: left as it is
    g0 = sparse.sparse_mesh(gentle_arch, gentle, shape, center, scale, refine_steps=0)
    g3 = sparse.sparse_mesh(gentle_arch, gentle, shape, center, scale)
    np.testing.assert_array_equal(g0[0], g3[0])
    # 20 times steeper (the same surface): saturated across a voxel, as trained networks
    (w3, b3) = gentle[-1]
    arch, weights = gentle_arch, [*gentle[:-1], (w3 * np.float32(20), b3 * np.float32(20))]
    plain_v, plain_f = sparse.sparse_mesh(arch, weights, shape, center, scale, refine_steps=0)
    v, f = sparse.sparse_mesh(arch, weights, shape, center, scale)
    assert np.array_equal(f, plain_f) and v.shape == plain_v.shape

    def index_of(world: np.ndarray) -> np.ndarray:
        return frame.world_to_index(world, shape, center, scale)

    def logit_at(world: np.ndarray) -> np.ndarray:
        p = (world - np.asarray(center)) / scale
        return np.abs(network.logits(arch, weights, p).astype(np.float64))

    before, after = index_of(plain_v), index_of(v)
    moved = np.abs(after - before) > 1e-9
    assert moved.any(axis=1).mean() > 0.5  # most vertices move
    assert (moved.sum(axis=1) <= 1).all()  # each along one axis only: its edge's
    lo = np.floor(before + 1e-9)
    assert ((after >= lo - 1e-9) & (after <= lo + 1 + 1e-9)).all()
    z_plain, z_refined = logit_at(plain_v), logit_at(v)
    assert np.median(z_refined) < 0.05 * np.median(z_plain)
    # refining the plain vertices with both ends evaluated afresh (no ends given) lands on
    # the same points to 1e-4 voxel: the ends marching cubes used are the same logits
    # through float32 levels (2^-19 apart), which only seed the bracket
    again = before.copy()
    assert sparse.refine_crossings(arch, weights, again, shape, 0) is again
    np.testing.assert_array_equal(again, before)  # 0 steps: untouched
    sparse.refine_crossings(arch, weights, again, shape)
    np.testing.assert_allclose(again, after, atol=1e-4)
