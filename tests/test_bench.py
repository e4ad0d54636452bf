"""``occcodec bench``: a real run on two tiny shapes, checked against the files it wrote.

The run (fast preset, 16^3, a fixed small network) is made once per module through
``main([...])``; each test then checks one promise of the report. Baseline plumbing (the fixed-frame voxelizer, the NI
encoder, the optional dependencies, the summary arithmetic) is tested on its own.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
import zstandard
from PIL import Image

from occcodec import decoder
from occcodec.tools import bench
from occcodec.format.arch import NI_PARAMS, parse_arch
from occcodec.cli import main
from occcodec.encoder.pipeline import EncodeOptions
from occcodec.shapes.inputs import load_shape
from occcodec.shapes.voxelize import voxelize, voxelize_in_frame

R = 16
PLOTS = ("rate_distortion.png", "hist_iou.png", "hist_chamfer.png", "hist_surface_chamfer.png")
MESH_METHODS = {bench.OCC, bench.NI, bench.ZSTD, bench.DRACO11, bench.DRACO14}


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
    for sub in ("occ", "ni", "zstd", "draco"):
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
        if r["method"] not in (bench.OCC, bench.NI):
            continue
        coded = decoder.read(report / r["file"])
        assert int(r["params"]) == coded.header.arch.params
        assert r["arch"] == str(coded.header.arch)
        # The bench compares with the encoder's grid, so it finds the encoder's IoU.
        assert float(r["iou"]) == pytest.approx(coded.header.metrics["iou"], abs=1e-12)
        assert float(r["encode_s"]) > 0 and float(r["decode_s"]) > 0
        if r["method"] == bench.NI:
            assert coded.header.arch == bench.NI_ARCH and int(r["params"]) == NI_PARAMS
            assert coded.header.options["preset"] == "fast"


def test_zstd_blob_is_the_lossless_grid(report: Path, rows: list[dict[str, str]],
                                        shapes_dir: Path) -> None:
    for r in (r for r in rows if r["method"] == bench.ZSTD):
        grid = load_shape(shapes_dir / r["shape"], resolution=R).occupancy
        raw = zstandard.ZstdDecompressor().decompress((report / r["file"]).read_bytes())
        back = np.unpackbits(np.frombuffer(raw, np.uint8), count=grid.size).reshape(grid.shape)
        assert (back.astype(bool) == grid).all()
        assert float(r["iou"]) == 1.0 and float(r["voxel_chamfer"]) == 0.0
        assert float(r["surface_chamfer"]) > 0  # marching cubes of voxels is not the mesh


def test_draco_blobs_decode_to_the_mesh(report: Path, rows: list[dict[str, str]]) -> None:
    import DracoPy

    for r in (r for r in rows if r["method"] in (bench.DRACO11, bench.DRACO14)):
        mesh = DracoPy.decode((report / r["file"]).read_bytes())
        assert len(mesh.faces) > 0
        assert float(r["iou"]) > 0.95  # 11 bits is far finer than a 16^3 grid


def test_markdown_report(report: Path) -> None:
    md = (report / "results.md").read_text()
    assert "## Summary (mean / median over shapes)" in md
    assert "occcodec is smaller than zstd grid in" in md and "of 2 shapes" in md
    assert "occcodec is smaller than Draco q11 in" in md
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

    def no_training(self: object, ref: object, method: str) -> dict[str, object]:
        return bench._row(ref, method, None, note="not run in this test")  # type: ignore[arg-type]

    monkeypatch.setattr(bench._Runner, "occ", no_training)
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(shapes_dir / "box.stl", d / "box.stl")
    res = bench.bench(d, tmp_path / "rep", bench.BenchSettings(
        EncodeOptions(preset="fast", resolution=R), surface_points=500))
    assert {r["method"] for r in res.rows} == {bench.ZSTD, bench.OCC, bench.NI}
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

    rows = [row("a", bench.OCC, 100, 0.99), row("a", bench.ZSTD, 300, 1.0),
            row("b", bench.OCC, 200, 0.97), row("b", bench.ZSTD, 100, 1.0),
            row("c", bench.OCC, 50, 0.98), row("c", bench.ZSTD, 400, 1.0)]
    (zstd,) = bench.size_counts(rows)
    assert zstd["other"] == bench.ZSTD and zstd["shapes"] == 3 and zstd["smaller"] == 2
    assert zstd["median"] == 3.0 and zstd["min"] == 0.5 and zstd["max"] == 8.0
    occ = next(s for s in bench.summary(rows) if s["method"] == bench.OCC)
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