"""The bench's methods, one small class each, and :data:`BASELINES`, the one list of them.

Everything else derives from :data:`BASELINES`: the order in which a shape's methods run and
the report lists them, the CLI's choices (:func:`choices`), the report's notes and the plots'
colours. occcodec itself is an entry like any other (its rows are what the others are
compared with). A baseline's :meth:`Baseline.run` writes one file under the report and
returns one row whose ``bytes`` is that file's size.

To add a method: subclass :class:`Baseline`, set ``name``, ``note``, ``colour`` (and
``requires`` for an optional dependency, ``meshes_only`` when it needs a mesh), write
``run``, and add an instance to :data:`BASELINES`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from occcodec.format.arch import NI_PARAMS, Arch, Layer
from occcodec.tools.bench.context import BenchSettings, Context, Ref, make_row

__all__ = [
    "BASELINES",
    "NI_ARCH",
    "Baseline",
    "CtxGrid",
    "DecimateDraco",
    "Draco",
    "NIArch",
    "Occcodec",
    "OcccodecPaper",
    "ZstdGrid",
    "by_name",
    "choices",
]

#: NI's network: 8 hidden ReLU layers of 32 (ReLU: the activation of NI's MLP).
NI_ARCH = Arch(tuple(Layer(32, "relu") for _ in range(8)))
assert NI_ARCH.params == NI_PARAMS
ZSTD_LEVEL = 19
#: The default of Draco's own command-line encoder. Level 10 changed sizes by -5 to +10 %
#: on shared meshes (and never the geometry, which the quantization alone decides).
DRACO_LEVEL = 7
BENCH_HINT = "pip install 'occcodec[bench]'"


class Baseline:
    """One method of the bench.

    Attributes
    ----------
    name
        The ``method`` column; unique among :data:`BASELINES`.
    note
        One line for the report: what the method is, as measured.
    colour
        Its colour in every plot.
    family
        The CLI choice that selects it (several rows of one method share one).
    requires
        Optional modules it imports; when one is missing the runner skips it with a note.
    meshes_only
        It needs the input mesh (skipped for a voxel-grid input).
    """

    name: str = ""
    note: str = ""
    colour: str = "#7f7f7f"
    family: str = ""
    requires: tuple[str, ...] = ()
    install_hint: str = BENCH_HINT
    meshes_only: bool = False

    def enabled(self, settings: BenchSettings) -> bool:
        """Whether this run asked for it (the CLI's selection, ``--with-paper``)."""
        return settings.baselines is None or self.family in settings.baselines

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Code ``ref``, write the file under ``ctx.report``, decode it, measure it.

        ``done`` holds this shape's rows of the methods run before (by name). Any exception
        becomes a failed row with the message as its note.
        """
        raise NotImplementedError


class _Occ(Baseline):
    """A ``.occ`` made by the encoder with some options (occcodec, NI-arch, paper)."""

    sub = "occ"

    def options(self, settings: BenchSettings) -> Any:
        return settings.encode_options()

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        import trimesh

        from occcodec import decoder
        from occcodec.encoder.pipeline import encode
        from occcodec.progress import RichProgress

        progress = RichProgress(quiet=ctx.settings.quiet)
        try:
            res = encode(ref.path, self.options(ctx.settings), progress)
        finally:
            progress.close()
        path, rel = ctx.write(self.sub, f"{ref.name}.occ", res.data)
        t0 = time.perf_counter()
        coded = decoder.read(path)
        grid = decoder.voxels(coded)
        dec = time.perf_counter() - t0
        mesh = None
        if ref.mesh is not None:
            # the mesh `occcodec decode` writes: specks dropped (decoder.SPECK_FRACTION)
            arrays = decoder.mesh_arrays(coded, drop_specks=decoder.SPECK_FRACTION)
            mesh = trimesh.Trimesh(*arrays, process=False)
        return make_row(ref, self.name, ctx.compare(ref, grid, mesh), file=rel,
                        bytes=path.stat().st_size, params=coded.params,
                        arch=coded.label, encode_s=res.seconds, decode_s=dec,
                        note=f"on {res.device}" + ("; grid mode (the lossless ctx-grid file "
                                                   "won)" if coded.grid_mode else ""))


class Occcodec(_Occ):
    name = family = "occcodec"
    note = "occcodec encode (search + final training), the .occ file as written"
    colour = "#1f77b4"


class OcccodecAt(_Occ):
    """occcodec again with ``--target-iou T`` (``bench --targets``): with the default row,
    the points of occcodec's rate-distortion curve on each shape."""

    family = "occcodec"
    colour = Occcodec.colour

    def __init__(self, target: float) -> None:
        self.target = float(target)
        self.name = f"{Occcodec.name} @{self.target * 100:g}%"
        self.note = (f"occcodec encode --target-iou {self.target:g} (the smallest file the "
                     f"rate control finds at that IoU), the .occ file as written")
        self.sub = f"occ-{self.target * 100:g}"

    def enabled(self, settings: BenchSettings) -> bool:
        return self.target in settings.targets and super().enabled(settings)

    def options(self, settings: BenchSettings) -> Any:
        return dataclasses.replace(settings.encode_options(), target_iou=self.target,
                                   max_bytes=None)


#: The prefix of the rows of :class:`OcccodecAt` (``occcodec @99%``).
AT_PREFIX = f"{Occcodec.name} @"


class NIArch(_Occ):
    name = family = "NI-arch"
    note = ("NI's 8x32 architecture trained under occcodec's budget and sampler; not the NI "
            "paper's training (8 hidden ReLU layers of 32, 7,553 params, trained from scratch "
            "like occcodec's final network: same samples, epochs, learning rate, best "
            "checkpoint, quantization; an occupancy classifier where NI fitted a signed "
            "distance), in a real .occ")
    colour = "#ff7f0e"
    sub = "ni"

    def options(self, settings: BenchSettings) -> Any:
        return dataclasses.replace(settings.encode_options(), arch=str(NI_ARCH))


class OcccodecPaper(_Occ):
    name = family = "occcodec paper"
    note = "occcodec encode --preset paper (the published search and training budget)"
    colour = "#8c564b"
    sub = "paper"

    def enabled(self, settings: BenchSettings) -> bool:
        return settings.with_paper and super().enabled(settings)

    def options(self, settings: BenchSettings) -> Any:
        return settings.encode_options("paper")


def _grid_row(ref: Ref, ctx: Context, name: str, grid: np.ndarray, **values: Any
              ) -> dict[str, Any]:
    """The row of a lossless grid coder; the surface figures use marching cubes of it."""
    from occcodec.tools.evaluate import grid_mesh

    mesh = grid_mesh(grid, ref.center, ref.scale) if ref.mesh is not None else None
    return make_row(ref, name, ctx.compare(ref, grid, mesh),
                    note="lossless; surface figures: marching cubes of the grid", **values)


class ZstdGrid(Baseline):
    name = family = "zstd grid"
    note = (f"the grid bit-packed (8 voxels a byte) in one zstd frame at level {ZSTD_LEVEL}; "
            "lossless; holds the voxels only (no grid shape or frame)")
    colour = "#2ca02c"

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        import zstandard

        from occcodec.shapes.gridio import pack_bits

        t0 = time.perf_counter()
        blob = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(pack_bits(ref.grid))
        enc = ref.voxelize_s + time.perf_counter() - t0
        path, rel = ctx.write("zstd", f"{ref.name}.bits.zst", blob)
        t0 = time.perf_counter()
        raw = zstandard.ZstdDecompressor().decompress(path.read_bytes())
        bits = np.frombuffer(raw, dtype=np.uint8)
        grid = np.unpackbits(bits, count=ref.grid.size).reshape(ref.grid.shape).astype(bool)
        dec = time.perf_counter() - t0
        return _grid_row(ref, ctx, self.name, grid, file=rel, bytes=path.stat().st_size,
                         encode_s=enc, decode_s=dec)


class CtxGrid(Baseline):
    """The grid through occcodec's lossless context-modelling coder (``occcodec.coding``)."""

    name = family = "ctx-grid"
    note = ("the grid coded losslessly by an adaptive binary arithmetic coder with a causal "
            "neighbourhood context (occcodec.coding.ctxgrid); the file is decoded back and "
            "checked voxel for voxel")
    colour = "#e377c2"
    requires = ("occcodec.coding.ctxgrid",)
    install_hint = "this occcodec has no lossless grid coder yet"

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        import importlib

        coder = importlib.import_module("occcodec.coding.ctxgrid")  # optional: lazy
        t0 = time.perf_counter()
        blob = bytes(coder.encode_grid(ref.grid))
        enc = ref.voxelize_s + time.perf_counter() - t0
        path, rel = ctx.write("ctxgrid", f"{ref.name}.ctx", blob)
        t0 = time.perf_counter()
        grid = np.asarray(coder.decode_grid(path.read_bytes()))
        dec = time.perf_counter() - t0
        if grid.shape != ref.grid.shape or not np.array_equal(grid.astype(bool), ref.grid):
            raise RuntimeError(f"ctx-grid decoded {path.name} to a different grid: the coder "
                               "is not lossless on this shape")
        return _grid_row(ref, ctx, self.name, grid.astype(bool), file=rel,
                         bytes=path.stat().st_size, encode_s=enc, decode_s=dec)


def _draco_decode_grid(blob: bytes, ref: Ref) -> tuple[Any, np.ndarray, float]:
    """Decode a Draco blob, time it, and make its grid in the reference's frame by the
    reference's rule and fill (:meth:`Ref.mesh_grid`: the way every mesh baseline gets its
    voxel figures)."""
    mesh, dec = _draco_mesh(blob)
    return mesh, ref.mesh_grid(mesh), dec


def _draco_mesh(blob: bytes) -> tuple[Any, float]:
    """A Draco blob decoded to a ``trimesh.Trimesh`` (float64, not processed), and the
    seconds Draco's decoding took."""
    import DracoPy  # type: ignore[import-not-found]
    import trimesh

    t0 = time.perf_counter()
    decoded = DracoPy.decode(blob)
    dec = time.perf_counter() - t0
    dv = np.asarray(decoded.points, dtype=np.float64).reshape(-1, 3)
    df = np.asarray(decoded.faces, dtype=np.int64).reshape(-1, 3)
    return trimesh.Trimesh(dv, df, process=False), dec


def _draco_encode(verts: np.ndarray, faces: np.ndarray, bits: int) -> bytes:
    import DracoPy  # type: ignore[import-not-found]

    return bytes(DracoPy.encode(verts, faces.astype(np.uint32), quantization_bits=bits,
                                compression_level=DRACO_LEVEL))


class Draco(Baseline):
    """The whole mesh through Draco at a fixed position quantization."""

    requires = ("DracoPy",)
    meshes_only = True

    def __init__(self, bits: int, colour: str) -> None:
        self.bits = bits
        self.name = self.family = f"Draco q{bits}"
        self.colour = colour
        self.note = (f"Draco (DracoPy), {bits}-bit positions, compression level {DRACO_LEVEL}, "
                     "positions and triangles only; decoded and made a grid in the reference's "
                     "frame by the reference's rule")

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        verts = np.asarray(ref.mesh.vertices, dtype=np.float64)
        faces = np.asarray(ref.mesh.faces, dtype=np.int64)
        t0 = time.perf_counter()
        blob = _draco_encode(verts, faces, self.bits)
        enc = time.perf_counter() - t0
        path, rel = ctx.write("draco", f"{ref.name}.q{self.bits}.drc", blob)
        mesh, grid, dec = _draco_decode_grid(path.read_bytes(), ref)
        return make_row(ref, self.name, ctx.compare(ref, grid, mesh), file=rel,
                        bytes=path.stat().st_size, encode_s=enc, decode_s=dec,
                        note=f"decoded mesh made a grid in the reference's frame ({ref.rule} "
                             "rule)")


#: Quadric-decimation reductions (fraction of triangles removed) and Draco position bits
#: searched by :class:`DecimateDraco`. Below 6 bits a 128^3 shape loses whole voxels
#: everywhere; 14 bits is already finer than the 512^3 grid limit.
REDUCTIONS: tuple[float, ...] = (0.98, 0.95, 0.9, 0.75, 0.5, 0.0)
DRACO_BITS: tuple[int, ...] = tuple(range(6, 15))
#: Above this grid edge the search uses the coarser :data:`REDUCTIONS_HIGH` and
#: :data:`DRACO_BITS_HIGH`: every measured setting costs a reference grid at that size (a
#: few seconds at 512^3 instead of a tenth at 128^3), and the full 6 x 9 table could cost
#: minutes per shape.
HIGH_RES = 128
#: 4 reductions x 5 bit depths, at most 20 settings measured per shape. Below 8 bits a
#: position step is 2 voxels or more of a 512^3 grid, so those settings cannot reach a high
#: IoU there.
REDUCTIONS_HIGH: tuple[float, ...] = (0.95, 0.75, 0.5, 0.0)
DRACO_BITS_HIGH: tuple[int, ...] = (8, 10, 11, 12, 14)


def search_settings(grid_edge: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The (reductions, Draco bits) :class:`DecimateDraco` searches for a grid of that edge."""
    if grid_edge > HIGH_RES:
        return REDUCTIONS_HIGH, DRACO_BITS_HIGH
    return REDUCTIONS, DRACO_BITS


@dataclasses.dataclass(frozen=True)
class _Candidate:
    reduction: float
    bits: int
    blob: bytes
    iou: float
    encode_s: float  # decimation + Draco encoding of this candidate


class DecimateDraco(Baseline):
    """The mesh simplified by quadric decimation and Draco-compressed, searched for the
    smallest file that reaches a target IoU.

    The search goes through :data:`REDUCTIONS` (strongest first, so a small file is found
    early) and, for each, the bits of :data:`DRACO_BITS` upwards, stopping a reduction at the
    first setting that reaches the target, or as soon as its file is not smaller than the
    best found: Draco's size grows with the bits, so no later setting of that reduction can
    win. Only settings that could win are decoded and voxelized (the costly step: a 128^3
    voxelization), and the two targets of one shape share those measurements. When no
    setting reaches the target, the row is the most faithful setting found, marked.
    """

    family = "decimate+draco"
    requires = ("DracoPy", "fast_simplification")
    meshes_only = True

    def __init__(self, target: float | None, label: str, slug: str, colour: str) -> None:
        self.target = target  # None: occcodec's IoU on the same shape
        self.name = f"decimate+draco {label}"
        self.slug = slug  # in the file name
        self.colour = colour
        goal = ("occcodec's IoU on the same shape" if target is None
                else f"{target * 100:g} % IoU")
        self.note = ("the mesh simplified by quadric decimation (fast-simplification; "
                     f"reduction {', '.join(f'{r:g}' for r in sorted(REDUCTIONS))}) and "
                     f"compressed by Draco (level {DRACO_LEVEL}, {DRACO_BITS[0]} to "
                     f"{DRACO_BITS[-1]}-bit positions; above {HIGH_RES}^3 reductions "
                     f"{', '.join(f'{r:g}' for r in sorted(REDUCTIONS_HIGH))} and bits "
                     f"{', '.join(map(str, DRACO_BITS_HIGH))}): the smallest file that "
                     f"reaches {goal}, "
                     "its IoU measured as for Draco q11/q14 (decoded mesh made a grid in "
                     "the reference's frame by the reference's rule)")

    def _target(self, done: dict[str, dict[str, Any]]) -> float:
        if self.target is not None:
            return self.target
        occ = done.get(Occcodec.name)
        if occ is None or occ.get("iou") is None:
            raise RuntimeError("no occcodec IoU on this shape to match (its row failed or "
                               "was not run): run the occcodec baseline too")
        return float(occ["iou"])

    def _decimated(self, ref: Ref, reduction: float) -> tuple[np.ndarray, np.ndarray, float]:
        import fast_simplification  # type: ignore[import-untyped]

        memo = ref.cache.setdefault("decimated", {})
        if reduction not in memo:
            verts = np.asarray(ref.mesh.vertices, dtype=np.float64)
            faces = np.asarray(ref.mesh.faces, dtype=np.int64)
            t0 = time.perf_counter()
            if reduction > 0:
                verts, faces = fast_simplification.simplify(verts, faces,
                                                            target_reduction=reduction)
            memo[reduction] = (np.asarray(verts, np.float64), np.asarray(faces, np.int64),
                               time.perf_counter() - t0)
        return memo[reduction]  # type: ignore[no-any-return]

    def _candidate(self, ref: Ref, reduction: float, bits: int, measure: bool
                   ) -> tuple[bytes, float, float | None]:
        """(blob, encode seconds, IoU or None when not measured); cached per shape."""
        from occcodec.tools.metrics import confusion

        blobs = ref.cache.setdefault("draco_blobs", {})
        ious = ref.cache.setdefault("draco_ious", {})
        key = (reduction, bits)
        if key not in blobs:
            verts, faces, simplify_s = self._decimated(ref, reduction)
            t0 = time.perf_counter()
            blobs[key] = (_draco_encode(verts, faces, bits),
                          simplify_s + time.perf_counter() - t0)
        blob, enc = blobs[key]
        if measure and key not in ious:
            _, grid, _ = _draco_decode_grid(blob, ref)
            ious[key] = float(confusion(ref.grid, grid)["iou"])
        return blob, enc, ious.get(key)

    def search(self, ref: Ref, target: float) -> tuple[_Candidate, int]:
        """The smallest setting that reaches ``target`` (or the most faithful one), and how
        many settings were decoded and voxelized for it."""
        best: _Candidate | None = None
        closest: _Candidate | None = None
        measured = 0
        reductions, depths = search_settings(max(ref.grid.shape))
        for reduction in reductions:
            if len(self._decimated(ref, reduction)[1]) == 0:
                continue  # decimated to nothing (a 12-triangle box at 0.98): no mesh to code
            for bits in depths:
                blob, enc, _ = self._candidate(ref, reduction, bits, measure=False)
                if best is not None and len(blob) >= len(best.blob):
                    break
                _, _, iou = self._candidate(ref, reduction, bits, measure=True)
                measured += 1
                assert iou is not None
                cand = _Candidate(reduction, bits, blob, iou, enc)
                if closest is None or (iou, -len(blob)) > (closest.iou, -len(closest.blob)):
                    closest = cand
                if iou >= target:
                    best = cand
                    break
        assert closest is not None
        return (best or closest), measured

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        target = self._target(done)
        t0 = time.perf_counter()
        found, measured = self.search(ref, target)
        search_s = time.perf_counter() - t0
        path, rel = ctx.write("decimate-draco", f"{ref.name}.{self.slug}.r{found.reduction:g}"
                              f".q{found.bits}.drc", found.blob)
        mesh, grid, dec = _draco_decode_grid(path.read_bytes(), ref)
        figures = ctx.compare(ref, grid, mesh)
        reached = found.iou >= target
        note = (f"reduction {found.reduction:g}, {found.bits}-bit positions; "
                f"{'reached' if reached else 'TARGET MISSED, most faithful setting found:'} "
                f"target IoU {target * 100:.3f} %; {measured} settings measured, search "
                f"{search_s:.1f} s")
        return make_row(ref, self.name, figures, file=rel, bytes=path.stat().st_size,
                        encode_s=found.encode_s, decode_s=dec, target_iou=target,
                        target_reached=reached, note=note)


class DecimateDracoAtBytes(DecimateDraco):
    """decimate+draco in occcodec's bytes: of the settings whose file is no larger than
    occcodec's on the same shape (for each reduction, the most position bits that fit:
    Draco's size grows with the bits), the one whose surface is closest to the mesh (the
    lowest surface Chamfer, measured as every row's, then the smaller file): the strongest
    competitor for surface figures at equal bytes. Until 2026-12-04 the pick was the
    highest IoU, which can be a coarser surface (more bits, stronger decimation)."""

    def __init__(self, colour: str) -> None:
        super().__init__(None, "@bytes", "bytes-occ", colour)
        self.note = ("the mesh simplified by quadric decimation and compressed by Draco, as "
                     "decimate+draco @occ, in at most occcodec's bytes on the same shape: of "
                     "the settings that fit (per reduction, the most position bits that "
                     "fit), the one with the lowest surface Chamfer to the mesh; surface "
                     "figures at equal bytes")

    def _surface(self, ref: Ref, ctx: Context, reduction: float, bits: int) -> float:
        """The surface Chamfer of a setting's decoded mesh against the mesh (world units;
        the row's own measure: ``ctx.compare``'s points and seed); cached per shape."""
        from occcodec.tools.metrics import surface_distances

        memo = ref.cache.setdefault("draco_surface", {})
        key = (reduction, bits)
        if key not in memo:
            blob, _, _ = self._candidate(ref, reduction, bits, measure=False)
            mesh, _ = _draco_mesh(blob)
            memo[key] = float(surface_distances(
                ref.mesh, mesh, n_points=ctx.settings.surface_points,
                seed=ctx.settings.encode.seed)["chamfer"])
        return memo[key]  # type: ignore[no-any-return]

    def run(self, ref: Ref, ctx: Context, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
        occ = done.get(Occcodec.name)
        if occ is None or not occ.get("bytes"):
            raise RuntimeError("no occcodec file on this shape to match in bytes (its row "
                               "failed or was not run): run the occcodec baseline too")
        budget = int(occ["bytes"])
        t0 = time.perf_counter()
        best: _Candidate | None = None
        best_surface = float("inf")
        measured = 0
        reductions, depths = search_settings(max(ref.grid.shape))
        for reduction in reductions:
            if len(self._decimated(ref, reduction)[1]) == 0:
                continue
            fit = None
            for bits in depths:
                blob, enc, _ = self._candidate(ref, reduction, bits, measure=False)
                if len(blob) > budget:
                    break
                fit = bits
            if fit is None:
                continue
            blob, enc, _ = self._candidate(ref, reduction, fit, measure=False)
            surface = self._surface(ref, ctx, reduction, fit)
            measured += 1
            if best is None or (surface, len(blob)) < (best_surface, len(best.blob)):
                best = _Candidate(reduction, fit, blob, float("nan"), enc)  # IoU: not asked
                best_surface = surface
        within = best is not None
        if best is None:  # nothing fits: the smallest setting, marked
            sizes = [(len(self._candidate(ref, r, depths[0], measure=False)[0]), r)
                     for r in reductions if len(self._decimated(ref, r)[1])]
            reduction = min(sizes)[1]
            blob, enc, _ = self._candidate(ref, reduction, depths[0], measure=False)
            best = _Candidate(reduction, depths[0], blob, float("nan"), enc)
        path, rel = ctx.write("decimate-draco", f"{ref.name}.{self.slug}.r{best.reduction:g}"
                              f".q{best.bits}.drc", best.blob)
        mesh, grid, dec = _draco_decode_grid(path.read_bytes(), ref)
        fits = ("within" if within else "OVER BUDGET, no setting fits: the smallest, over")
        note = (f"reduction {best.reduction:g}, {best.bits}-bit positions; {fits} occcodec's "
                f"{budget:,} bytes; {measured} settings measured, search "
                f"{time.perf_counter() - t0:.1f} s")
        return make_row(ref, self.name, ctx.compare(ref, grid, mesh), file=rel,
                        bytes=path.stat().st_size, encode_s=best.encode_s, decode_s=dec,
                        note=note)


#: Every method, in the order a shape runs them and the report lists them. occcodec runs
#: first: decimate+draco's matched row needs its IoU.
BASELINES: tuple[Baseline, ...] = (
    Occcodec(),
    NIArch(),
    ZstdGrid(),
    CtxGrid(),
    Draco(11, "#d62728"),
    Draco(14, "#9467bd"),
    DecimateDraco(None, "@occ", "iou-occ", "#17becf"),
    DecimateDraco(0.99, "@99%", "iou-99", "#bcbd22"),
    DecimateDracoAtBytes("#ff9896"),
    OcccodecPaper(),
)
assert len({b.name for b in BASELINES}) == len(BASELINES)


def by_name(name: str) -> Baseline | None:
    """The baseline whose rows carry ``name`` in the ``method`` column, if any (``occcodec
    @T%`` rows: an :class:`OcccodecAt`)."""
    if name.startswith(AT_PREFIX) and name.endswith("%"):
        try:
            return OcccodecAt(float(name[len(AT_PREFIX):-1]) / 100.0)
        except ValueError:
            return None
    return next((b for b in BASELINES if b.name == name), None)


def methods(settings: BenchSettings) -> list[Baseline]:
    """The baselines a run does, in order: :data:`BASELINES` with one :class:`OcccodecAt`
    per ``--targets`` value after occcodec's own row."""
    out: list[Baseline] = []
    for b in BASELINES:
        out.append(b)
        if isinstance(b, Occcodec):
            out += [OcccodecAt(t) for t in sorted(settings.targets)]
    return [b for b in out if b.enabled(settings)]


def curve(method: str) -> str:
    """The curve a method's points join in the rate-distortion plots: ``occcodec @T%`` rows
    with occcodec's, ``decimate+draco @...`` rows with each other."""
    return method.split(" @")[0]


def choices() -> tuple[str, ...]:
    """The CLI names that select baselines (``--baselines``), in :data:`BASELINES` order."""
    return tuple(dict.fromkeys(b.family for b in BASELINES))
