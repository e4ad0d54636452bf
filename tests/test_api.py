"""The Python API: occcodec.encode / occcodec.decode on paths, meshes, scenes and grids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import occcodec
from occcodec.shapes import frame

#: conftest's SMALL_ENCODE as keywords (a fixed small network, one thread): the same bytes.
SMALL = {"preset": "default", "resolution": 20, "threads": 1, "arch": "16:relu,16:relu",
         "quant": "fp16"}


def _centres_world(shape: occcodec.DecodedShape, dims: tuple[int, ...]) -> np.ndarray:
    """World coordinates of every voxel centre of a grid of ``dims``, in C order."""
    axes = [a.astype(np.float64) for a in frame.axis_coords(dims)]
    p = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return np.asarray(shape.header.center) + shape.header.scale * p


def test_encode_path_equals_the_cli(tmp_path: Path, box_mesh_path: Path, coded_box: Path) -> None:
    data = occcodec.encode(box_mesh_path, **SMALL)
    assert data == coded_box.read_bytes()


def test_decode_bytes_and_path_agree(coded_box: Path) -> None:
    a = occcodec.decode(coded_box.read_bytes())
    b = occcodec.decode(coded_box)
    assert np.array_equal(a.voxels(), b.voxels())
    assert b.info()["file"] == str(coded_box)
    assert a.info()["params"] == a.header.arch.params


def test_info_matches_cli_json(capsys: pytest.CaptureFixture[str], coded_box: Path) -> None:
    code, out, _ = run_cli(capsys, "info", coded_box, "--json")
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(occcodec.decode(coded_box).info(),
                                                    default=str))


def test_occupancy_agrees_with_voxels_at_centres(coded_box: Path) -> None:
    shape = occcodec.decode(coded_box)
    for res in (None, 33):
        grid = shape.voxels(res)
        pts = _centres_world(shape, grid.shape)
        occ = shape.occupancy(pts)
        prob = shape.probability(pts)
        assert occ.shape == (grid.size,) and occ.dtype == bool
        assert np.all((prob >= 0) & (prob <= 1))
        assert np.array_equal(occ, prob > 0.5) or np.abs(prob[occ != (prob > 0.5)] - 0.5).max() < 1e-6
        disagree = occ != grid.ravel()
        # only voxels whose logit is within float32 rounding of 0 may differ (summation order)
        assert not disagree.any() or np.abs(prob[disagree] - 0.5).max() < 1e-5
        assert grid.any()


def test_mesh_is_in_world_coordinates_with_positive_volume(coded_box: Path) -> None:
    mesh = occcodec.decode(coded_box).mesh()
    assert len(mesh.faces) > 0
    assert mesh.volume > 0
    # the box was translated to (10, -3, 5): the decoded mesh sits there, not at the origin
    assert np.allclose(mesh.bounds.mean(axis=0), (10.0, -3.0, 5.0), atol=0.3)


def test_encode_trimesh_and_scene(box_mesh_path: Path) -> None:
    import trimesh

    box = trimesh.load_mesh(box_mesh_path)
    data = occcodec.encode(box, **SMALL)
    shape = occcodec.decode(data)
    assert shape.header.raw["source"]["kind"] == "mesh"
    assert shape.voxels().sum() > 0
    assert shape.header.raw["metrics"]["iou"] > 0.5
    scene = trimesh.Scene([box])
    assert occcodec.encode(scene, **SMALL) == data  # a scene of one mesh is that mesh
    # same source and seed: same bytes
    assert occcodec.encode(box, **SMALL) == data


def test_encode_numpy_grid_as_given() -> None:
    idx = np.indices((20, 18, 24)).astype(float)
    grid = (((idx - np.array([9.5, 8.5, 11.5])[:, None, None, None])
             / np.array([7.0, 6.0, 9.0])[:, None, None, None]) ** 2).sum(axis=0) <= 1.0
    shape = occcodec.decode(occcodec.encode(grid, **SMALL))
    assert shape.header.grid == (20, 18, 24)
    assert shape.header.fill == "given"
    got = shape.voxels()
    iou = (got & grid).sum() / (got | grid).sum()
    assert iou == pytest.approx(shape.header.raw["metrics"]["iou"])
    assert iou > 0.8


@pytest.mark.parametrize("bad", [[1, 2, 3], 3.5, None])
def test_encode_refuses_other_types(bad: object) -> None:
    with pytest.raises(occcodec.UsageError):
        occcodec.encode(bad, **SMALL)


def test_encode_refuses_an_empty_grid() -> None:
    with pytest.raises(occcodec.InputError):
        occcodec.encode(np.zeros((20, 20, 20), bool), **SMALL)


def test_decode_refuses_garbage_and_bad_points(tmp_path: Path, coded_box: Path) -> None:
    with pytest.raises(occcodec.FormatError):
        occcodec.decode(b"not an occ file at all")
    with pytest.raises(occcodec.InputError):
        occcodec.decode(tmp_path / "missing.occ")
    shape = occcodec.decode(coded_box)
    with pytest.raises(occcodec.UsageError):
        shape.occupancy(np.zeros((4, 2)))
    with pytest.raises(occcodec.UsageError):
        shape.probability([[np.nan, 0, 0]])


def test_every_public_name_has_a_docstring() -> None:
    for name in occcodec.__all__:
        obj = getattr(occcodec, name)
        if name != "__version__":
            assert obj.__doc__, name
    for meth in ("voxels", "mesh", "occupancy", "probability", "info"):
        assert getattr(occcodec.DecodedShape, meth).__doc__, meth
