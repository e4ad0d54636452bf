"""``occcodec bench``: a real run on two tiny shapes, checked against the files it wrote.

The run (fast preset, 16^3, a fixed small network) is made once per module through
``main([...])``; each test then checks one promise of the report. Baseline plumbing (the
fixed-frame voxelizer, the NI-arch encoder, the decimate+draco search, the ctx-grid checks,
the optional dependencies, the summary arithmetic, the plots) is tested on its own.
"""

from __future__ import annotations

import csv
import importlib
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
import zstandard
from PIL import Image

from occcodec import decoder
from occcodec.cli import main
from occcodec.encoder.pipeline import EncodeOptions
from occcodec.errors import UsageError
from occcodec.format.arch import NI_PARAMS, parse_arch
from occcodec.shapes.inputs import load_shape
from occcodec.shapes.inside import centre_grid
from occcodec.shapes.voxelize import voxelize, voxelize_in_frame
from occcodec.tools import bench
from occcodec.tools.bench import baselines as bl
from occcodec.tools.bench.context import Context

R = 16
PLOTS = bench.PLOTS
OCC, NI, ZSTD, CTX, PAPER = "occcodec", "NI-arch", "zstd grid", "ctx-grid", "occcodec paper"
DRACO = ("Draco q11", "Draco q14")
DD_OCC, DD_99, DD_B = "decimate+draco @occ", "decimate+draco @99%", "decimate+draco @bytes"


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


HAVE_CTX = _importable("occcodec.coding.ctxgrid")  # written by another branch
MESH_METHODS = {OCC, NI, ZSTD, *DRACO, DD_OCC, DD_99, DD_B} | ({CTX} if HAVE_CTX else set())


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory, box_mesh_path: Path) -> Path:
    d = tmp_path_factory.mktemp("shapes")
    shutil.copy(box_mesh_path, d / "box.stl")
    trimesh.creation.icosphere(subdivisions=2, radius=0.7).export(d / "ball.ply")
    (d / "notes.txt").write_text("not a shape\n")
    return d


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, shapes_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("bench") / "report"
    # --arch skips the search (tested with the encoder) to keep this run short; everything
    # else is the fast preset's: the final fit, and the NI baseline trained like it.
    code = main(["bench", str(shapes_dir), "-o", str(out), "--preset", "fast",
                 "--resolution", str(R), "--threads", "1", "--points", "2000", "-q",
                 "--arch", "16:relu"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def rows(report: Path) -> list[dict[str, str]]:
    with open(report / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_output_file_exists(report: Path) -> None:
    assert (report / "results.csv").is_file() and (report / "results.md").is_file()
    for name in PLOTS:
        with Image.open(report / name) as img:
            assert img.format == "PNG" and img.size[0] > 200
    for sub in ("occ", "ni", "zstd", "draco", "decimate-draco"):
        assert len(list((report / sub).iterdir())) >= 2


def test_rows_cover_every_shape_and_method(rows: list[dict[str, str]]) -> None:
    assert list(rows[0]) == list(bench.CSV_FIELDS)
    by_shape: dict[str, set[str]] = {}
    for r in rows:
        by_shape.setdefault(r["shape"], set()).add(r["method"])
    assert by_shape == {"ball.ply": MESH_METHODS, "box.stl": MESH_METHODS}
    assert [r["shape"] for r in rows] == sorted(r["shape"] for r in rows)  # sorted inputs


def test_bytes_are_the_sizes_of_the_files_written(report: Path,
                                                  rows: list[dict[str, str]]) -> None:
    for r in rows:
        assert r["file"], r
        assert int(r["bytes"]) == (report / r["file"]).stat().st_size, r


def test_occ_rows_are_consistent_with_their_files(report: Path,
                                                  rows: list[dict[str, str]]) -> None:
    for r in rows:
        if r["method"] not in (OCC, NI):
            continue
        coded = decoder.read(report / r["file"])
        assert int(r["params"]) == coded.header.arch.params
        assert r["arch"] == str(coded.header.arch)
        # The bench compares with the encoder's grid, so it finds the encoder's IoU.
        assert float(r["iou"]) == pytest.approx(coded.header.metrics["iou"], abs=1e-7)  # v2 stores metrics as float32
        assert float(r["encode_s"]) > 0 and float(r["decode_s"]) > 0
        if r["method"] == NI:
            assert coded.header.arch == bench.NI_ARCH and int(r["params"]) == NI_PARAMS
            assert coded.header.options["preset"] == "fast"


def _truth(path: Path) -> np.ndarray:
    """The bench's reference grid: a mesh's centre rule (README, "Which rule every figure
    uses"), a voxel file as given."""
    shape = load_shape(path, resolution=R)
    if shape.mesh is None:
        return np.asarray(shape.occupancy, dtype=bool)
    gf = shape.grid_frame
    return centre_grid(shape.mesh, gf.center, gf.scale, gf.shape, shape.fill)


def test_zstd_blob_is_the_lossless_grid(report: Path, rows: list[dict[str, str]],
                                        shapes_dir: Path) -> None:
    for r in (r for r in rows if r["method"] == ZSTD):
        grid = _truth(shapes_dir / r["shape"])
        raw = zstandard.ZstdDecompressor().decompress((report / r["file"]).read_bytes())
        back = np.unpackbits(np.frombuffer(raw, np.uint8), count=grid.size).reshape(grid.shape)
        assert (back.astype(bool) == grid).all()
        assert float(r["iou"]) == 1.0 and float(r["voxel_chamfer"]) == 0.0
        assert float(r["surface_chamfer"]) > 0  # marching cubes of voxels is not the mesh


def test_draco_blobs_decode_to_the_mesh(report: Path, rows: list[dict[str, str]]) -> None:
    import DracoPy

    for r in (r for r in rows if r["method"] in DRACO):
        mesh = DracoPy.decode((report / r["file"]).read_bytes())
        assert len(mesh.faces) > 0
        assert float(r["iou"]) > 0.95  # 11 bits is far finer than a 16^3 grid


def test_markdown_report(report: Path) -> None:
    md = (report / "results.md").read_text()
    assert "## Summary (mean / median over shapes)" in md
    assert "occcodec is smaller than zstd grid in" in md and "of 2 shapes" in md
    assert "occcodec is smaller than Draco q11 in" in md
    assert "occcodec is smaller than decimate+draco @occ in" in md
    assert "## Target IoU reached" in md and f"- {DD_99}: on " in md
    assert "NI-arch" in md and "not the NI paper's training" in md and "NI 8x32" not in md
    assert "ball.ply" in md and "box.stl" in md
    assert "notes.txt" in md  # the skipped file is listed
    for name in PLOTS:
        assert f"]({name})" in md


def test_a_used_report_dir_needs_force(capsys: pytest.CaptureFixture[str], report: Path,
                                       shapes_dir: Path) -> None:
    code = main(["bench", str(shapes_dir), "-o", str(report), "--preset", "fast",
                 "--resolution", str(R)])
    err = capsys.readouterr().err
    assert code == 3 and "--force" in err


def test_bad_directories(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["bench", str(tmp_path / "empty"), "-o", str(tmp_path / "r")]) == 2
    assert "no mesh or voxel file" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing"), "-o", str(tmp_path / "r")]) == 2


def test_without_the_bench_extra_the_baselines_are_skipped_with_a_note(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shapes_dir: Path) -> None:
    monkeypatch.setitem(sys.modules, "DracoPy", None)  # import DracoPy -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    def no_training(self: bl.Baseline, ref: Any, ctx: Any, done: Any) -> dict[str, Any]:
        return bench.make_row(ref, self.name, None, note="not run in this test")

    monkeypatch.setattr(bl._Occ, "run", no_training)
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(shapes_dir / "box.stl", d / "box.stl")
    res = bench.bench(d, tmp_path / "rep", bench.BenchSettings(
        EncodeOptions(preset="fast", resolution=R), surface_points=500))
    assert {r["method"] for r in res.rows} == {ZSTD, OCC, NI} | ({CTX} if HAVE_CTX else set())
    notes = " ".join(res.notes)
    assert "DracoPy is not installed" in notes and "matplotlib is not installed" in notes
    assert not list((tmp_path / "rep").glob("*.png"))
    md = (tmp_path / "rep" / "results.md").read_text()
    assert "DracoPy is not installed" in md


def test_summary_and_size_counts_by_hand() -> None:
    def row(shape: str, method: str, size: int, iou: float) -> dict[str, object]:
        r = dict.fromkeys(bench.CSV_FIELDS)
        r.update(shape=shape, method=method, bytes=size, iou=iou)
        return r

    rows = [row("a", OCC, 100, 0.99), row("a", ZSTD, 300, 1.0),
            row("b", OCC, 200, 0.97), row("b", ZSTD, 100, 1.0),
            row("c", OCC, 50, 0.98), row("c", ZSTD, 400, 1.0)]
    (zstd,) = bench.size_counts(rows)
    assert zstd["other"] == ZSTD and zstd["shapes"] == 3 and zstd["smaller"] == 2
    assert zstd["median"] == 3.0 and zstd["min"] == 0.5 and zstd["max"] == 8.0
    occ = next(s for s in bench.summary(rows) if s["method"] == OCC)
    assert occ["shapes"] == 3
    assert occ["bytes"] == (pytest.approx(350 / 3), 100)
    assert occ["iou"] == (pytest.approx(98.0), pytest.approx(98.0))


def test_voxelize_in_frame_reproduces_and_shifts_the_encoder_grid(box_mesh_path: Path) -> None:
    mesh = trimesh.load(box_mesh_path)
    grid, center, scale, fill, _ = voxelize(mesh, 24, "solid")
    same = voxelize_in_frame(mesh, center, scale, 24, fill)
    assert (same == grid).all()
    h = 2.0 * scale / 24  # one voxel: moving the frame by +h moves the shape by -1 index
    moved = voxelize_in_frame(mesh, np.add(center, (h, 0.0, 0.0)), scale, 24, fill)
    assert (moved[:-1] == grid[1:]).all()


def test_ni_is_a_plain_arch_option() -> None:
    """NI (8 hidden layers) goes through encode --arch: the user depth limit admits it."""
    assert parse_arch(str(bench.NI_ARCH)).params == 7553

def test_decimate_draco_rows_reach_their_target_or_are_marked(
        report: Path, rows: list[dict[str, str]]) -> None:
    import DracoPy

    occ_iou = {r["shape"]: float(r["iou"]) for r in rows if r["method"] == OCC}
    for shape, iou in occ_iou.items():
        mine = {r["method"]: r for r in rows if r["shape"] == shape}
        assert float(mine[DD_OCC]["target_iou"]) == iou
        assert float(mine[DD_99]["target_iou"]) == 0.99
        for r in (mine[DD_OCC], mine[DD_99]):
            reached = float(r["iou"]) >= float(r["target_iou"])
            assert r["target_reached"] == str(reached), r
            assert ("TARGET MISSED" in r["note"]) == (not reached), r
            assert len(DracoPy.decode((report / r["file"]).read_bytes()).faces) > 0
        at_bytes = mine[DD_B]  # in occcodec's bytes, or the smallest setting, marked
        fits = int(at_bytes["bytes"]) <= int(mine[OCC]["bytes"])
        assert fits == ("OVER BUDGET" not in at_bytes["note"]), at_bytes


def _reference(path: Path, tmp_path: Path) -> tuple[bench.Ref, Context]:
    from occcodec.tools.bench.runner import _Runner

    settings = bench.BenchSettings(EncodeOptions(preset="fast", resolution=R),
                                   surface_points=500)
    runner = _Runner(tmp_path, settings, lambda text: None)
    return runner.load(path, path.stem), runner.ctx


def _draco_sweep(ref: bench.Ref) -> list[tuple[float, int, int, trimesh.Trimesh]]:
    """Every (reduction, bits) setting decimate+draco searches at R, written and decoded as
    the baseline does: (reduction, bits, bytes, decoded mesh)."""
    import DracoPy
    import fast_simplification  # type: ignore[import-untyped]

    out = []
    v0, f0 = np.asarray(ref.mesh.vertices), np.asarray(ref.mesh.faces)
    for red in bl.REDUCTIONS:
        v, f = (fast_simplification.simplify(v0, f0, target_reduction=red) if red
                else (v0, f0))
        for bits in bl.DRACO_BITS:
            blob = DracoPy.encode(v, f.astype(np.uint32), quantization_bits=bits,
                                  compression_level=bl.DRACO_LEVEL)
            m = DracoPy.decode(blob)
            mesh = trimesh.Trimesh(np.asarray(m.points).reshape(-1, 3),
                                   np.asarray(m.faces).reshape(-1, 3), process=False)
            out.append((red, bits, len(blob), mesh))
    return out


def test_decimate_draco_finds_the_smallest_setting_that_reaches_the_target(
        tmp_path: Path, shapes_dir: Path) -> None:
    """The pruned search gives the file a full sweep of the grid would pick."""
    from occcodec.tools.metrics import confusion

    ref, ctx = _reference(shapes_dir / "ball.ply", tmp_path)
    target = 0.9
    row = bl.DecimateDraco(target, "@90%", "iou-90", "#000000").run(ref, ctx, {})
    sweep = []
    for _, _, size, mesh in _draco_sweep(ref):
        grid = centre_grid(mesh, ref.center, ref.scale, (R, R, R), ref.fill)
        sweep.append((size, float(confusion(ref.grid, grid)["iou"])))
    reaching = [size for size, iou in sweep if iou >= target]
    assert reaching, "the test shape must be reachable at 90 %"
    assert row["target_reached"] is True and row["iou"] >= target
    assert row["bytes"] == min(reaching) == (tmp_path / row["file"]).stat().st_size


def test_decimate_draco_at_bytes_is_the_closest_surface_that_fits(
        tmp_path: Path, shapes_dir: Path) -> None:
    """Of the settings within occcodec's bytes (per reduction the most bits that fit), the
    row is the one with the lowest surface Chamfer, measured as the row is."""
    from occcodec.tools.metrics import surface_distances

    ref, ctx = _reference(shapes_dir / "ball.ply", tmp_path)
    settings = []
    for red, bits, size, mesh in _draco_sweep(ref):
        cd = surface_distances(ref.mesh, mesh, n_points=ctx.settings.surface_points,
                               seed=ctx.settings.encode.seed)["chamfer"]
        settings.append((red, bits, size, cd))
    # a budget between the smallest and the largest file, so that the choice is not trivial
    sizes = sorted(size for _, _, size, _ in settings)
    budget = sizes[len(sizes) // 2]
    fitting = {}
    for red, _bits, size, cd in settings:  # bits ascend: the last that fits wins
        if size <= budget:
            fitting[red] = (size, cd)
    want = min(fitting.values(), key=lambda sc: (sc[1], sc[0]))
    row = bl.DecimateDracoAtBytes("#000000").run(ref, ctx, {OCC: {"bytes": budget}})
    assert "within" in row["note"] and row["bytes"] == want[0] <= budget
    assert row["surface_chamfer"] == pytest.approx(want[1], rel=1e-9)
    assert want[1] == min(cd for _, cd in fitting.values())


def test_decimate_draco_marks_an_unreachable_target(tmp_path: Path, shapes_dir: Path) -> None:
    ref, ctx = _reference(shapes_dir / "ball.ply", tmp_path)
    row = bl.DecimateDraco(1.01, "@101%", "iou-101", "#000000").run(ref, ctx, {})
    assert row["target_reached"] is False and "TARGET MISSED" in row["note"]
    best = max(ref.cache["draco_ious"].values())  # the most faithful setting measured
    assert row["iou"] == pytest.approx(best, abs=1e-12)
    with pytest.raises(RuntimeError, match="no occcodec IoU"):
        bl.DecimateDraco(None, "@occ", "iou-occ", "#000000").run(ref, ctx, {})


def test_ctx_grid_rows_are_lossless_files(report: Path, rows: list[dict[str, str]],
                                          shapes_dir: Path) -> None:
    ctxgrid = pytest.importorskip("occcodec.coding.ctxgrid")
    mine = [r for r in rows if r["method"] == CTX]
    assert len(mine) == 2
    for r in mine:
        grid = _truth(shapes_dir / r["shape"])
        back = ctxgrid.decode_grid((report / r["file"]).read_bytes())
        assert np.array_equal(np.asarray(back, dtype=bool), grid)
        assert float(r["iou"]) == 1.0


def _fake_coder(lossy: bool) -> types.ModuleType:
    """A stand-in for occcodec.coding.ctxgrid (zstd of the packed bits, with the shape), to
    test the baseline's plumbing where the real coder is not installed."""
    fake = types.ModuleType("occcodec.coding.ctxgrid")

    def encode_grid(grid: np.ndarray) -> bytes:
        head = np.asarray(grid.shape, dtype="<u2").tobytes()
        return head + zstandard.ZstdCompressor().compress(np.packbits(grid).tobytes())

    def decode_grid(data: bytes) -> np.ndarray:
        shape = tuple(int(n) for n in np.frombuffer(data[:6], dtype="<u2"))
        bits = np.frombuffer(zstandard.ZstdDecompressor().decompress(data[6:]), np.uint8)
        grid = np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).astype(bool)
        if lossy:
            grid[0, 0, 0] = not grid[0, 0, 0]
        return grid

    fake.encode_grid = encode_grid  # type: ignore[attr-defined]
    fake.decode_grid = decode_grid  # type: ignore[attr-defined]
    return fake


def test_ctx_grid_baseline_writes_decodes_and_checks_the_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shapes_dir: Path) -> None:
    ref, ctx = _reference(shapes_dir / "box.stl", tmp_path)
    monkeypatch.setitem(sys.modules, "occcodec.coding.ctxgrid", _fake_coder(lossy=False))
    row = bl.CtxGrid().run(ref, ctx, {})
    assert row["file"] == "ctxgrid/box.ctx"
    assert row["bytes"] == (tmp_path / row["file"]).stat().st_size > 6
    assert row["iou"] == 1.0 and row["voxel_chamfer"] == 0.0
    monkeypatch.setitem(sys.modules, "occcodec.coding.ctxgrid", _fake_coder(lossy=True))
    ctx.settings.force = True
    with pytest.raises(RuntimeError, match="not lossless"):
        bl.CtxGrid().run(ref, ctx, {})


def test_baselines_table_drives_names_choices_and_notes() -> None:
    names = [b.name for b in bench.BASELINES]
    assert names == [OCC, NI, ZSTD, CTX, *DRACO, DD_OCC, DD_99, DD_B, PAPER]
    assert bench.choices() == (OCC, NI, ZSTD, CTX, *DRACO, "decimate+draco", PAPER)
    for b in bench.BASELINES:
        assert b.note and b.colour.startswith("#") and bench.by_name(b.name) is b
    assert len({b.colour for b in bench.BASELINES}) == len(names)
    ni = bench.by_name(NI)
    assert ni is not None and "not the NI paper's training" in ni.note


def test_a_selection_runs_only_the_chosen_baselines(tmp_path: Path, shapes_dir: Path) -> None:
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(shapes_dir / "box.stl", d / "box.stl")
    with pytest.raises(UsageError, match="unknown baseline 'nope'"):
        bench.bench(d, tmp_path / "bad", bench.BenchSettings(baselines=("nope",)))
    assert not (tmp_path / "bad").exists()  # refused before any work
    res = bench.bench(d, tmp_path / "rep", bench.BenchSettings(
        EncodeOptions(preset="fast", resolution=R), surface_points=500,
        baselines=(ZSTD, "decimate+draco")))
    assert [r["method"] for r in res.rows] == [ZSTD, DD_OCC, DD_99, DD_B]
    failed = res.rows[1]  # nothing to match without occcodec's row: a failed row, not a guess
    assert failed["bytes"] is None and "no occcodec IoU" in failed["note"]
    assert res.rows[3]["bytes"] is None and "no occcodec file" in res.rows[3]["note"]
    assert res.failures == 2 and res.rows[2]["bytes"] is not None


def test_targets_add_occcodec_rows_on_one_curve(tmp_path: Path, shapes_dir: Path) -> None:
    from occcodec.tools.bench.plots import rate_distortion

    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(shapes_dir / "ball.ply", d / "ball.ply")
    res = bench.bench(d, tmp_path / "rep", bench.BenchSettings(
        EncodeOptions(preset="fast", resolution=R, threads=1, arch="16:relu"),
        surface_points=500, baselines=(OCC,), targets=(0.5,)))
    at = f"{OCC} @50%"
    assert [r["method"] for r in res.rows] == [OCC, at] and res.failures == 0
    row = res.rows[1]
    assert row["file"].startswith("occ-50/")
    coded = decoder.read(tmp_path / "rep" / row["file"])
    assert coded.header.raw["options"]["target_iou"] == 0.5
    assert row["bytes"] == (tmp_path / "rep" / row["file"]).stat().st_size
    b = bench.by_name(at)
    assert b is not None and b.colour == bench.by_name(OCC).colour  # type: ignore[union-attr]
    ax = rate_distortion(res.rows).axes[0]
    (line,) = ax.get_lines()  # the two occcodec rows of the one shape: one curve
    assert sorted(line.get_xdata()) == sorted(r["bytes"] for r in res.rows)


def test_rate_distortion_draws_a_curve_where_a_method_has_several_points() -> None:
    from matplotlib.colors import to_hex

    from occcodec.tools.bench.plots import rate_distortion

    def row(shape: str, method: str, size: int, iou: float) -> dict[str, object]:
        r = dict.fromkeys(bench.CSV_FIELDS)
        r.update(shape=shape, method=method, bytes=size, iou=iou)
        return r

    rows = [row("a", OCC, 300, 0.99), row("a", OCC, 100, 0.95), row("a", OCC, 200, 0.97),
            row("b", OCC, 150, 0.96), row("a", ZSTD, 400, 1.0), row("b", ZSTD, 90, 1.0)]
    ax = rate_distortion(rows).axes[0]
    (curve,) = ax.get_lines()  # shape a of occcodec; the single points are scatters
    assert list(curve.get_xdata()) == [100, 200, 300]
    assert list(curve.get_ydata()) == pytest.approx([95, 97, 99])
    assert to_hex(curve.get_color()) == bench.by_name(OCC).colour  # type: ignore[union-attr]
    assert len(ax.collections) == 3  # occcodec on b, zstd on a and b
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"{OCC} (4)", f"{ZSTD} (2)"]


def test_bench_against_the_centre_rule_gives_surface_figures_for_every_row(
        tmp_path: Path, shapes_dir: Path) -> None:
    """At 48^3 with --reference centres: every method is measured against the winding-number
    inside at the voxel centres (zstd and ctx-grid code that grid), with every surface
    column filled, and the bytes-against-surface-Chamfer plot drawn."""
    from occcodec.shapes.inside import centre_grid

    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(shapes_dir / "box.stl", d / "box.stl")
    out = tmp_path / "rep"
    methods = [OCC, ZSTD, *DRACO, DD_OCC, DD_99, DD_B] + ([CTX] if HAVE_CTX else [])
    code = main(["bench", str(d), "-o", str(out), "--preset", "fast", "--resolution", "48",
                 "--threads", "1", "--points", "2000", "-q", "--arch", "16:relu",
                 "--reference", "centres", "--baselines", OCC, ZSTD, *DRACO, "decimate+draco",
                 *([CTX] if HAVE_CTX else [])])
    assert code == 0
    with open(out / "results.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert {r["method"] for r in got} == set(methods)
    for r in got:
        assert r["reference_rule"] == "centres" and r["grid"] == "48x48x48"
        for key in ("surface_chamfer", "surface_chamfer_vox", "surface_hausdorff",
                    "surface_hausdorff_vox", "surface_hausdorff95", "surface_hausdorff95_vox",
                    "normal_consistency"):
            assert r[key] != "", (r["method"], key)
        assert float(r["surface_hausdorff95"]) <= float(r["surface_hausdorff"])
        assert 0 < float(r["normal_consistency"]) <= 1
    zstd = next(r for r in got if r["method"] == ZSTD)
    assert float(zstd["iou"]) == 1.0
    blob = zstandard.ZstdDecompressor().decompress((out / zstd["file"]).read_bytes())
    grid = np.unpackbits(np.frombuffer(blob, np.uint8), count=48**3).reshape(48, 48, 48)
    shape = load_shape(d / "box.stl", resolution=48)
    truth = centre_grid(trimesh.load(d / "box.stl", force="mesh"), shape.center, shape.scale,
                        (48, 48, 48))
    assert np.array_equal(grid.astype(bool), truth)
    assert not np.array_equal(truth, shape.occupancy)  # not the encoder's grid
    with Image.open(out / "rate_surface.png") as img:
        assert img.format == "PNG"
    assert "winding number" in (out / "results.md").read_text()
