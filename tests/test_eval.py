"""``occcodec eval`` through ``main([...])``: figures, JSON, the error cloud, wrong references.

The metric functions themselves are checked against hand-computed cases in test_metrics.py;
here the point is that eval compares the right grids: the encoder's grid of the reference
(same resolution, fill and frame) against the decoder's grid of the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from conftest import SMALL_ENCODE as ENC
from conftest import run_cli

from occcodec import decoder
from occcodec.cli import main
from occcodec.tools.evaluate import grid_mesh, load_reference
from occcodec.tools.metrics import MISSING_RGB, SPURIOUS_RGB

run = run_cli




@pytest.fixture(scope="module")
def shifted_box(tmp_path_factory: pytest.TempPathFactory, coded_box: Path) -> Path:
    """The coded box moved by 2 voxels along +x: a valid file with known errors.

    The network has no input encoding, so moving its input is a change of the first
    layer's bias: ``(x - d) K + b = x K + (b - d K[0])``. The result misses a 2-voxel slab on
    one side and adds one on the other, whatever the quality of the original fit.
    """
    from occcodec.format import container
    from occcodec.format.quant import quantize

    coded = decoder.read(coded_box)
    assert coded.header.arch.pe_levels == 0
    weights = [(k.copy(), b.copy()) for k, b in coded.weights]
    kernel, bias = weights[0]
    weights[0] = (kernel, bias - (2 * 2.0 / 20) * kernel[0])
    out = tmp_path_factory.mktemp("eval") / "shifted.occ"
    out.write_bytes(container.pack(coded.header.raw, quantize(weights, coded.header.quant)))
    return out


@pytest.fixture(scope="module")
def coded_grid(tmp_path_factory: pytest.TempPathFactory, sphere_npz_path: Path) -> Path:
    out = tmp_path_factory.mktemp("eval") / "ellipsoid.occ"
    assert main(["encode", str(sphere_npz_path), "-o", str(out), *ENC]) == 0
    return out


def test_json_matches_the_encoders_own_measure(
        capsys: pytest.CaptureFixture[str], box_mesh_path: Path, coded_box: Path) -> None:
    code, out, _ = run(capsys, "eval", box_mesh_path, coded_box, "--json", "--points", "5000")
    assert code == 0
    rec = json.loads(out)
    header = decoder.read(coded_box).header
    # Same grids as at encode time, so the same IoU and accuracy, to the last bit.
    assert rec["voxel"]["iou"] == header.metrics["iou"]
    assert rec["voxel"]["accuracy"] == header.metrics["accuracy"]
    v = rec["voxel"]
    assert v["tp"] + v["fp"] + v["fn"] + v["tn"] == 20**3
    assert rec["reference_kind"] == "mesh" and rec["same_source_file"] is True
    assert rec["bytes"] == coded_box.stat().st_size
    assert rec["params"] == header.arch.params
    # At least a box in the right place.
    assert rec["voxel"]["iou"] > 0.6
    assert 0 <= rec["voxel_chamfer"]["chamfer_voxels"] < 1.5
    s = rec["surface"]
    assert 0 < s["chamfer"] < 1.5 * s["voxel_edge"]
    assert s["chamfer_voxels"] == pytest.approx(s["chamfer"] / s["voxel_edge"])
    assert s["voxel_edge"] == pytest.approx(2.0 * header.scale / 20)
    # distances are to the other surface, not to its samples: no sampling floor to report
    assert "floor" not in s


def test_a_known_error_is_measured(capsys: pytest.CaptureFixture[str], box_mesh_path: Path,
                                   coded_box: Path, shifted_box: Path) -> None:
    base = json.loads(run(capsys, "eval", box_mesh_path, coded_box, "--json",
                          "--points", "5000")[1])
    code, out, _ = run(capsys, "eval", box_mesh_path, shifted_box, "--json", "--points", "5000")
    assert code == 0
    rec = json.loads(out)
    v = rec["voxel"]
    assert v["fn"] > 0 and v["fp"] > 0 and v["iou"] < base["voxel"]["iou"]
    # Moved by 2 voxels: the boundary voxels of the x faces are 2 voxels off, the others
    # (sliding along themselves) mostly 0, so the mean lies strictly between.
    assert 0.2 < rec["voxel_chamfer"]["chamfer_voxels"] < 2.0
    assert rec["voxel_chamfer"]["hausdorff_voxels"] == pytest.approx(2.0, abs=1.01)
    s = rec["surface"]
    assert s["chamfer"] > base["surface"]["chamfer"]


def test_text_table(capsys: pytest.CaptureFixture[str], box_mesh_path: Path,
                    coded_box: Path) -> None:
    code, out, _ = run(capsys, "eval", box_mesh_path, coded_box, "--points", "2000")
    assert code == 0
    for word in ("IoU", "precision", "recall", "voxel Chamfer", "surface Chamfer",
                 "normal consistency"):
        assert word in out


def test_error_cloud_is_a_coloured_ply(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       box_mesh_path: Path, shifted_box: Path) -> None:
    coded_box = shifted_box
    ply = tmp_path / "errors.ply"
    code, out, _ = run(capsys, "eval", box_mesh_path, coded_box, "--json", "--points", "1000",
                       "--errors", ply)
    assert code == 0
    rec = json.loads(out)
    v = rec["voxel"]
    assert rec["errors"] == {"path": str(ply), "missing": v["fn"], "spurious": v["fp"]}
    assert v["fn"] > 0 and v["fp"] > 0
    cloud = trimesh.load(ply)
    assert isinstance(cloud, trimesh.PointCloud)
    assert len(cloud.vertices) == v["fn"] + v["fp"]
    rgb = np.asarray(cloud.colors)[:, :3]
    assert (rgb[: v["fn"]] == MISSING_RGB).all() and (rgb[v["fn"]:] == SPURIOUS_RGB).all()
    # The points are voxel centres in the mesh's own (off-origin) coordinates.
    box = trimesh.load(box_mesh_path)
    lo, hi = box.bounds
    margin = 2.0 * decoder.read(coded_box).header.scale / 20
    assert (cloud.vertices > lo - 3 * margin).all() and (cloud.vertices < hi + 3 * margin).all()
    # An existing output needs --force.
    code, _, err = run(capsys, "eval", box_mesh_path, coded_box, "--errors", ply)
    assert code == 3 and "--force" in err
    assert run(capsys, "eval", box_mesh_path, coded_box, "--points", "500", "--errors", ply,
               "--force")[0] == 0


def test_voxel_reference_uses_the_grid_as_given(
        capsys: pytest.CaptureFixture[str], sphere_npz_path: Path, coded_grid: Path) -> None:
    code, out, _ = run(capsys, "eval", sphere_npz_path, coded_grid, "--json", "--points", "2000")
    assert code == 0
    rec = json.loads(out)
    assert rec["reference_kind"] == "voxels"
    assert rec["grid"] == [20, 18, 24]
    assert rec["voxel"]["iou"] == decoder.read(coded_grid).header.metrics["iou"]
    assert "marching cubes" in rec["reference_surface"]
    assert any("voxel grid" in n for n in rec["notes"])


def test_another_shape_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  coded_box: Path, sphere_npz_path: Path,
                                  coded_grid: Path, box_mesh_path: Path) -> None:
    other = trimesh.creation.box(extents=(2.0, 1.2, 0.8))  # same box, moved
    other.apply_translation((11.0, -3.0, 5.0))
    path = tmp_path / "moved.stl"
    other.export(path)
    code, _, err = run(capsys, "eval", path, coded_box)
    assert code == 2 and "not the encoded shape" in err and "Traceback" not in err
    # A grid of another size, and a mesh where the file was made from a grid.
    code, _, err = run(capsys, "eval", sphere_npz_path, coded_box)
    assert code == 2 and "not the encoded shape" in err
    code, _, err = run(capsys, "eval", box_mesh_path, coded_grid)
    assert code == 2 and "voxel grid" in err


def test_missing_inputs_are_one_line_errors(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, box_mesh_path: Path,
                                            coded_box: Path) -> None:
    code, _, err = run(capsys, "eval", box_mesh_path, tmp_path / "nope.occ")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, "eval", tmp_path / "nope.stl", coded_box)
    assert code == 2 and err.count("\n") == 1


def test_eval_needs_no_tensorflow(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str], box_mesh_path: Path,
                                  coded_box: Path) -> None:
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    code, out, _ = run(capsys, "eval", box_mesh_path, coded_box, "--json", "--points", "500")
    assert code == 0 and "iou" in json.loads(out)["voxel"]


def test_grid_mesh_is_placed_in_world_coordinates() -> None:
    g = np.zeros((10, 10, 10), dtype=bool)
    g[2:8, 2:8, 2:8] = True
    mesh = grid_mesh(g, center=(100.0, 0.0, -5.0), scale=2.0)
    # voxel i has p = (i - 4.5) / 5; the level-0.5 surface lies half a voxel outside the
    # occupied centres: i = 1.5 and 7.5 -> p = -0.6 and 0.6 -> world +-1.2 around the centre.
    assert np.allclose(mesh.bounds, [[98.8, -1.2, -6.2], [101.2, 1.2, -3.8]])
    assert len(grid_mesh(np.zeros((4, 4, 4), bool), (0, 0, 0), 1.0).faces) == 0


def test_load_reference_reproduces_the_encoded_grid(box_mesh_path: Path,
                                                    coded_box: Path) -> None:
    coded = decoder.read(coded_box)
    ref = load_reference(box_mesh_path, coded.header)
    assert ref.grid.shape == coded.header.grid
    assert ref.center == coded.header.center and ref.scale == coded.header.scale


def test_eval_at_another_resolution_uses_the_winding_rule(
        capsys: pytest.CaptureFixture[str], box_mesh_path: Path, coded_box: Path) -> None:
    from occcodec.format.network import scaled_shape
    from occcodec.shapes.inside import centre_grid
    from occcodec.tools.metrics import confusion

    code, out, _ = run(capsys, "eval", box_mesh_path, coded_box, "--json", "--points", "3000",
                       "--resolution", "40")
    assert code == 0
    rec = json.loads(out)
    coded = decoder.read(coded_box)
    h = coded.header
    shape = scaled_shape(h.grid, 40)
    assert rec["grid"] == list(shape) and rec["encoded_grid"] == list(h.grid)
    assert rec["resolution"] == 40 and "winding number" in rec["rule"]
    # The figures are those of the decoded grid at 40 against the inside at its centres.
    truth = centre_grid(trimesh.load(box_mesh_path, force="mesh"), h.center, h.scale, shape)
    assert rec["voxel"] == confusion(truth, decoder.voxels(coded, 40))
    s = rec["surface"]
    assert s["voxel_edge"] == pytest.approx(2.0 * h.scale / 40)
    assert 0 < s["chamfer"] <= s["hausdorff_95"] <= s["hausdorff"]
    assert 0.5 < s["normal_consistency"] <= 1.0
    # Without --resolution the record says it used the encoder's voxelization.
    base = json.loads(run(capsys, "eval", box_mesh_path, coded_box, "--json",
                          "--points", "3000")[1])
    assert base["resolution"] is None and "encoder's voxelization" in base["rule"]
    code, out, _ = run(capsys, "eval", box_mesh_path, coded_box, "--resolution", "40",
                       "--points", "2000")
    assert code == 0 and "winding number" in out and "normal consistency" in out


def test_a_voxel_reference_only_at_its_own_grid(
        capsys: pytest.CaptureFixture[str], sphere_npz_path: Path, coded_grid: Path) -> None:
    code, out, _ = run(capsys, "eval", sphere_npz_path, coded_grid, "--json", "--points", "2000",
                       "--resolution", "24")
    assert code == 0 and json.loads(out)["grid"] == [20, 18, 24]
    code, _, err = run(capsys, "eval", sphere_npz_path, coded_grid, "--resolution", "48")
    assert code == 2 and "own grid" in err and err.count("\n") == 1
