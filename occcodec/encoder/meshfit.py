"""Mesh inputs: train on points drawn from the mesh itself, measure against its inside.

A voxel input trains on its grid (:func:`occcodec.encoder.sampling.make_samples`). A mesh
input trains on points drawn in continuous space by
:func:`occcodec.shapes.inside.training_points` (near the surface at several scales and
through the volume), labelled exactly by the winding-number rule (or the shell rule), so the
network learns the shape rather than one grid's staircase. ``--resolution R`` only sets the
grid where fidelity is measured and the default decoding grid: the point counts below are
fixed, so the search and the final fit cost the same at every R (a preset's epochs are passes
over these points).

Truth at R (:func:`reference`): the winding-number (or shell) rule at the R^3 voxel centres,
the full grid by :func:`occcodec.shapes.inside.centre_grid` up to ``FULL_TRUTH_EDGE``; above
it a uniform random subset of ``SAMPLED_CENTRES`` voxel centres (a 1024^3 grid is 1 GiB and
minutes of ray casting). On that subset the intersection and union counts are unbiased
estimates of the full ones; with 2 M centres and a union of about 20 % of the box, an IoU of
99 % has a standard error of about 0.01 %. The decoded surface for ``surface_chamfer`` is
the decoder's own sparse mesh at ``min(R, FULL_TRUTH_EDGE)``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

import numpy as np

from occcodec.encoder.sampling import Samples
from occcodec.errors import UsageError
from occcodec.format import network
from occcodec.format.arch import Arch
from occcodec.format.network import Weights
from occcodec.shapes.frame import index_to_normalized
from occcodec.shapes.inside import (
    TruthFill,
    centre_grid,
    label_points,
    mix_for,
    training_points,
)

if TYPE_CHECKING:
    import trimesh

    from occcodec.shapes.inputs import Shape

__all__ = ["FULL_TRUTH_EDGE", "N_TRAIN", "N_VAL", "SAMPLED_CENTRES", "MeshReference",
           "mesh_metrics", "mesh_samples", "reference"]

#: Most training points of a mesh input, reached at R >= 125: the voxel path's training set
#: at 128^3 is about as large (measured: nut 998k, spot 1.01M, 76277 1.04M samples), so an
#: epoch costs what it cost before; above 128 the count stays fixed.
N_TRAIN = 1_000_000
#: Validation points: a fifth of the training points.
N_VAL = 200_000
#: Below the cap, ``PER_AREA * R^2`` training points (never fewer than ``MIN_TRAIN``): at
#: small R a coarse surface needs fewer points, and the fast tests stay fast (24^3: 37k).
PER_AREA = 64
MIN_TRAIN = 20_000
#: Largest grid edge whose truth is computed in full (``centre_grid``: 23-32 s at 512).
FULL_TRUTH_EDGE = 512
#: Voxel centres drawn (uniformly, without replacement) to estimate the IoU above that.
SAMPLED_CENTRES = 2_000_000
#: Surface points per mesh for ``surface_chamfer`` (``tools.metrics.surface_chamfer``).
CHAMFER_POINTS = 100_000
#: Screening (:func:`mesh_metrics`' ``screen``): voxel centres of the full truth drawn once
#: per reference (a fixed seed: the encoder's random stream is not touched) ...
SCREEN_CENTRES = 1_000_000
#: ... and how far under the target an IoU estimated on them must be for the exact decode
#: to be skipped. With a union of 5 % of the grid (cow at 512^3) 1 M centres hold about
#: 50 k union voxels: the estimate's standard error near 99 % is about 0.045 point, so the
#: margin is 4.5 of them (nut, a union of about 20 %: 9). A trial screened out wrongly
#: would only cost bytes (a larger plan is written), never a wrong figure: the written
#: file is measured in full.
SCREEN_MARGIN = 0.002
SCREEN_SEED = 0x5C4EE7
#: Sparse fields a :class:`MeshReference` keeps (each tens of MB at 512^3): rate control's
#: chosen trial is one of the last two scored, and measuring it again with its surface then
#: skips a decode (8.5 s for nut's rippled network at 512^3).
KEPT_FIELDS = 2


def _truth_fill(shape: Shape) -> tuple[TruthFill, trimesh.Trimesh]:
    """The truth's fill and the mesh of a mesh input.

    Raises
    ------
    UsageError
        If the shape is not a mesh input with fill solid or shell.
    """
    if shape.fill not in ("solid", "shell") or shape.mesh is None:
        raise UsageError("mesh training needs a mesh input with fill solid or shell")
    return shape.fill, shape.mesh  # type: ignore[return-value]


def mesh_samples(shape: Shape, rng: np.random.Generator, n_train: int | None = None,
                 n_val: int | None = None) -> Samples:
    """Training and validation points of a mesh input, labelled by its truth.

    One draw of ``n_train + n_val`` points (so the coarse labelling grid is built once),
    split at random (default counts: ``min(N_TRAIN, max(MIN_TRAIN, PER_AREA R^2))`` and a
    fifth of that); both sets follow :func:`occcodec.shapes.inside.mix_for` at R.
    ``boundary`` counts the points drawn near the surface, ``interior_kept`` the uniform ones.

    Raises
    ------
    UsageError
        If the shape is not a mesh input or a count is not positive.
    InputError
        As :func:`occcodec.shapes.inside.training_points`.
    """
    fill, mesh = _truth_fill(shape)
    dims = shape.grid_frame.shape
    if n_train is None:
        n_train = min(N_TRAIN, max(MIN_TRAIN, PER_AREA * max(dims) ** 2))
        n_val = max(1, n_train * N_VAL // N_TRAIN) if n_val is None else n_val
    n_train = int(n_train)
    n = n_train + (N_VAL if n_val is None else int(n_val))
    mix = mix_for(max(dims))
    x, y = training_points(mesh, shape.center, shape.scale, n, rng,
                           fill=fill, resolution=max(dims), shape=dims, mix=mix)
    order = rng.permutation(n)
    tr, va = order[:n_train], order[n_train:]
    uniform = mix.counts(n)[-1]
    return Samples(train_x=x[tr], train_y=y[tr], val_x=x[va], val_y=y[va],
                   boundary=n - uniform, interior_kept=uniform)


@dataclass
class MeshReference:
    """The truth at the voxel centres of the R grid: full ``grid``, or ``index`` + ``labels``
    of a uniform subset (then ``total`` is the grid's voxel count)."""

    dims: tuple[int, int, int]
    center: tuple[float, float, float]
    scale: float
    grid: np.ndarray | None = None
    index: np.ndarray | None = None
    labels: np.ndarray | None = None
    total: int = 0
    components: int | None = None  # of ``grid``, by :func:`grid_components` (when asked)
    #: The sparse fields of the last :data:`KEPT_FIELDS` networks decoded against ``grid``,
    #: by their weights: rate control measures its chosen trial again with the surface.
    fields: OrderedDict[bytes, Any] = dataclass_field(default_factory=OrderedDict)
    #: :func:`grid_components`' label array, kept from one count to the next.
    labels_buffer: np.ndarray | None = None
    #: The screening sample (voxel indices; their truth), drawn when needed.
    screen_points: tuple[np.ndarray, np.ndarray] | None = None

    def screen_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """:data:`SCREEN_CENTRES` voxel centres of the full truth (all of a smaller grid),
        drawn uniformly without replacement with a fixed seed, and their truth."""
        assert self.grid is not None
        if self.screen_points is None:
            total = self.grid.size
            if total <= SCREEN_CENTRES:
                flat = np.arange(total, dtype=np.int64)
            else:
                rng = np.random.default_rng(SCREEN_SEED)
                flat = np.sort(rng.choice(total, size=SCREEN_CENTRES, replace=False))
            index = np.stack(np.unravel_index(flat, self.dims), axis=1)
            self.screen_points = (index, self.grid.reshape(-1)[flat])
        return self.screen_points

    def field(self, arch: Arch, weights: Weights) -> Any:
        """The sparse field of a network on the full truth's grid, decoded or kept."""
        from occcodec.sparse import sparse_field

        h = hashlib.sha256(str(arch).encode())
        for k, b in weights:
            h.update(np.ascontiguousarray(k, dtype=np.float32).tobytes())
            h.update(np.ascontiguousarray(b, dtype=np.float32).tobytes())
        key = h.digest()
        if key in self.fields:
            self.fields.move_to_end(key)
            return self.fields[key]
        f = sparse_field(arch, weights, self.dims)
        self.fields[key] = f
        while len(self.fields) > KEPT_FIELDS:
            self.fields.popitem(last=False)
        return f


def grid_components(grid: np.ndarray, out: np.ndarray | None = None) -> int:
    """26-connected components of a bool grid of at least ``decoder.SPECK_FRACTION`` of the
    largest one's voxels (the share ``decode`` drops as specks; 1-6 s at 512^3, most of it
    scipy's 26-connected labelling). ``out``, an int32 array of the grid's shape, is used
    for the labels: reused from call to call, its pages are not faulted in again (on the
    2-core machine at 512^3, cow: 0.6 s against 3.5 s into a fresh array)."""
    from scipy import ndimage

    from occcodec.decoder import SPECK_FRACTION

    if out is None:
        labels, n = ndimage.label(grid, structure=np.ones((3, 3, 3), bool))
    else:
        labels, n = out, ndimage.label(grid, structure=np.ones((3, 3, 3), bool), output=out)
    if n == 0:
        return 0
    # each label counted inside its own bounding box: bincount would gather or convert the
    # labels (a 1 GiB int64 temporary at 512^3), and most of the boxes are tiny
    sizes = np.array([np.count_nonzero(labels[box] == i)
                      for i, box in enumerate(ndimage.find_objects(labels), start=1)])
    return int(np.count_nonzero(sizes >= SPECK_FRACTION * sizes.max()))


def extra_components(pred: np.ndarray, ref: MeshReference) -> int:
    """How many more components (:func:`grid_components`) ``pred`` has than the full truth
    of ``ref`` (0 when it has no more)."""
    assert ref.grid is not None
    if ref.labels_buffer is None:
        ref.labels_buffer = np.empty(ref.grid.shape, dtype=np.int32)
    if ref.components is None:
        ref.components = grid_components(ref.grid, ref.labels_buffer)
    return max(0, grid_components(pred, ref.labels_buffer) - ref.components)


#: Most voxel centres of spurious parts that :func:`spurious_samples` returns (a random
#: subset above it); ``sampling.with_points`` repeats them so that a part of a few hundred
#: voxels weighs on the loss among a million training points.
SPURIOUS_CAP = 50_000


def spurious_samples(arch: Arch, weights: Weights, ref: MeshReference,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Training points against the spurious parts of a network: the voxel centres of every
    26-connected component of its decoded grid at R that has no voxel inside the truth
    (a floating sheet or blob away from the shape, which the volume samples, about one per
    130 voxels at 512^3, barely touch), labelled empty by the truth (normalised coordinates
    float32, labels float32 0, the number of parts); None when there is none or when the
    truth is not a full grid.

    The centres are exact: the truth at each is the full grid's (empty), with no inside
    test of points between centres. At most :data:`SPURIOUS_CAP` centres (a random subset
    above it).
    """
    from scipy import ndimage

    if ref.grid is None:
        return None
    pred = ref.field(arch, weights).voxels()
    if ref.labels_buffer is None:
        ref.labels_buffer = np.empty(ref.grid.shape, dtype=np.int32)
    labels = ref.labels_buffer
    ndimage.label(pred, structure=np.ones((3, 3, 3), bool), output=labels)
    picked: list[np.ndarray] = []
    parts = 0
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        mine = labels[box] == i
        if np.any(ref.grid[box][mine]):
            continue
        parts += 1
        local = np.argwhere(mine)
        picked.append(local + np.array([s.start for s in box]))
    if not picked:
        return None
    index = np.concatenate(picked)
    if len(index) > SPURIOUS_CAP:
        index = index[rng.choice(len(index), size=SPURIOUS_CAP, replace=False)]
    x = index_to_normalized(index.astype(np.float64), ref.dims).astype(np.float32)
    return x, np.zeros(len(x), dtype=np.float32), parts


def reference(shape: Shape, rng: np.random.Generator) -> MeshReference:
    """The truth at R for a mesh input (see the module docstring).

    Raises
    ------
    UsageError, InputError
        As :func:`occcodec.shapes.inside.centre_grid`.
    """
    fill, mesh = _truth_fill(shape)
    gf = shape.grid_frame
    dims = gf.shape
    ref = MeshReference(dims=dims, center=gf.center, scale=gf.scale)
    if max(dims) <= FULL_TRUTH_EDGE:
        ref.grid = centre_grid(mesh, gf.center, gf.scale, dims, fill)
        return ref
    total = int(np.prod(dims, dtype=np.int64))
    flat = np.unique(rng.integers(0, total, size=SAMPLED_CENTRES, dtype=np.int64))
    index = np.stack(np.unravel_index(flat, dims), axis=1)
    world = np.asarray(gf.index_to_world(index.astype(np.float64)))
    ref.index, ref.total = index, total
    ref.labels = label_points(mesh, world, fill, 0.5 * gf.voxel_size)
    return ref


def _decoded_chamfer(verts: np.ndarray, faces: np.ndarray, mesh: Any) -> float:
    """``surface_chamfer`` (world units) against ``mesh`` of a decoded surface as ``decode``
    writes it: components under ``decoder.SPECK_FRACTION`` of the largest dropped."""
    import trimesh

    from occcodec.decoder import SPECK_FRACTION
    from occcodec.sparse import drop_specks
    from occcodec.tools.metrics import surface_chamfer

    verts, faces, _ = drop_specks(verts, faces, SPECK_FRACTION)
    decoded = trimesh.Trimesh(vertices=verts, faces=faces, process=False)
    return float(surface_chamfer(decoded, mesh, CHAMFER_POINTS)["chamfer"])


def grid_surface_chamfer(grid: np.ndarray, ref: MeshReference, mesh: Any) -> float:
    """``surface_chamfer`` of a grid-mode file of ``grid``: marching cubes of the voxels in
    ``ref``'s frame (:func:`_decoded_chamfer`)."""
    from occcodec.shapes.meshing import grid_surface

    return _decoded_chamfer(*grid_surface(grid, ref.center, ref.scale), mesh)


def _logits_at(arch: Arch, weights: Weights, p: np.ndarray) -> np.ndarray:
    """``network.logits`` at normalised points, in chunks of 2^18."""
    return np.concatenate([network.logits(arch, weights, p[s : s + (1 << 18)])
                           for s in range(0, len(p), 1 << 18)]).reshape(-1)


def _iou_accuracy(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    inter = int(np.count_nonzero(pred & truth))
    union = int(np.count_nonzero(pred | truth))
    return (inter / union if union else 1.0), float(np.count_nonzero(pred == truth)) / truth.size


def mesh_metrics(arch: Arch, weights: Weights, ref: MeshReference, mesh: Any,
                 surface: bool = True, components: float | None = None,
                 screen: float | None = None, estimate: bool = False) -> dict[str, Any]:
    """IoU and accuracy against ``ref``, and ``surface_chamfer`` against ``mesh`` (world
    units; skipped when ``surface`` is false, as for rate control's trials), all from the
    decoder's own numpy code (the sparse decoder, ``network.logits``).

    ``iou_sampled`` is the number of voxel centres the IoU was estimated on (0: all). With
    ``components`` (an IoU), without the surface (a rate-control trial) and with the full
    truth, ``extra_components`` (:func:`extra_components`) too when the IoU reaches
    ``components``: a trial that misses the target fails anyway, and the 26-connected
    labelling costs 1-6 s at 512^3 (cow: 6 s; it was 20 of cow's 111 s when every trial
    and float fit counted). Rate control takes it out before the metrics are stored.

    With ``screen`` (the target IoU), without the surface and with the full truth, the IoU
    is first estimated on :meth:`MeshReference.screen_sample`; when the estimate is more
    than :data:`SCREEN_MARGIN` under ``screen`` the trial fails anyway, and the estimate is
    returned (``iou_sampled`` > 0) without decoding the grid (7.8 s for nut's rippled
    network at 512^3). Rate control measures the file it writes in full.

    With ``estimate`` (and without the surface, with the full truth) the IoU is always the
    estimate on :meth:`MeshReference.screen_sample`: rate control's float fits, whose IoU
    is only a ceiling for the plans (``ratefit.CEILING_SLACK``, 0.2 point). Measured on the
    five 512^3 files of ``../shared/meshes`` (cow, nut, pinion, rotor_small, spot): the
    estimate was 0.12 point under the full IoU for cow and within 0.025 point for the
    others, in 0.1-0.3 s where the full decode took 1.2-9.6 s (nut). A wrong ceiling
    costs bytes or time (a plan skipped or tried), never a wrong figure.
    """
    from occcodec.sparse import field_surface, sparse_mesh

    out: dict[str, Any] = {"params": arch.params}
    if (screen is not None or estimate) and not surface and ref.grid is not None:
        from occcodec.sparse import voxel_logits

        index, truth = ref.screen_sample()
        iou, acc = _iou_accuracy(voxel_logits(arch, weights, ref.dims, index) > 0, truth)
        if estimate or (screen is not None and iou < screen - SCREEN_MARGIN):
            out.update(iou_sampled=len(index), iou=iou, accuracy=acc)
            return out
    if ref.grid is not None:
        f = ref.field(arch, weights)
        pred = f.voxels()
        truth = ref.grid
        if surface:
            verts, faces = field_surface(f, arch, weights, ref.center, ref.scale)
        out["iou_sampled"] = 0
    else:
        assert ref.index is not None and ref.labels is not None
        p = index_to_normalized(ref.index.astype(np.float64), ref.dims).astype(np.float32)
        pred = _logits_at(arch, weights, p) > 0
        truth, n = ref.labels, len(ref.labels)
        if surface:
            mesh_dims = network.scaled_shape(ref.dims, FULL_TRUTH_EDGE)
            verts, faces = sparse_mesh(arch, weights, mesh_dims, ref.center, ref.scale)
        out["iou_sampled"] = int(n)
    out["iou"], out["accuracy"] = _iou_accuracy(pred, truth)
    if not surface:
        if components is not None and ref.grid is not None and out["iou"] >= components:
            out["extra_components"] = extra_components(pred, ref)
        return out
    out["surface_chamfer"] = _decoded_chamfer(verts, faces, mesh)  # the mesh `decode` writes
    return out
