"""``occcodec render`` through ``main([...])``: a PNG of the requested size that shows something.

The rasteriser itself is tested in test_render.py; here: the .occ and mesh inputs, the
comparison picture, the automatic up axis and the command-line errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from conftest import run_cli
from PIL import Image

from occcodec.tools.pictures import caption, guess_up

run = run_cli


@pytest.fixture
def coded(coded_box: Path) -> Path:
    return coded_box


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def assert_picture(path: Path, width: int, height: int) -> np.ndarray:
    img = pixels(path)
    assert img.shape == (height, width, 3)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 3  # shape, outline, background
    drawn = (np.abs(img.astype(int) - 255).sum(axis=2) > 30).mean()
    assert 0.02 < drawn < 0.95
    return img


def test_render_an_occ_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                            coded: Path) -> None:
    out = tmp_path / "occ.png"
    code, stdout, _ = run(capsys, "render", coded, "-o", out, "--width", "240",
                          "--height", "180")
    assert code == 0 and "240x180" in stdout
    img = assert_picture(out, 240, 180)
    assert (img[0, 0] == 255).all()  # white background around the shape


def test_render_a_mesh_from_each_view(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      box_mesh_path: Path) -> None:
    imgs = []
    for view in ("iso", "front", "side", "top"):
        out = tmp_path / f"{view}.png"
        assert run(capsys, "render", box_mesh_path, "-o", out, "--view", view,
                   "--width", "160", "--height", "120")[0] == 0
        imgs.append(assert_picture(out, 160, 120).astype(int))
    # A 2 x 1.2 x 0.8 box looks different from each side.
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(imgs[i] - imgs[j]).mean() > 1.0


def test_compare_shows_both_with_iou_and_sizes(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path, coded: Path,
                                               box_mesh_path: Path) -> None:
    out = tmp_path / "cmp.png"
    code, stdout, _ = run(capsys, "render", coded, "--compare", box_mesh_path, "-o", out,
                          "--width", "640", "--height", "300", "--json")
    assert code == 0
    rec = json.loads(stdout)
    img = assert_picture(out, 640, 300)
    # Measured IoU (the reference is the encoded mesh), and both sizes in the caption.
    assert 0.5 < rec["iou"] <= 1.0
    assert f"{box_mesh_path.stat().st_size:,} B" in rec["caption"]
    assert f"{coded.stat().st_size:,} B" in rec["caption"]
    # Something is drawn in each half.
    band = img[40:-40].astype(int)
    for half in (band[:, :310], band[:, 330:]):
        assert (np.abs(half - 255).sum(axis=2) > 30).mean() > 0.02


def test_compare_with_another_mesh_falls_back_to_the_recorded_iou(tmp_path: Path,
                                                                  coded: Path) -> None:
    from occcodec import decoder
    from occcodec.tools.pictures import render_file

    other = tmp_path / "ball.ply"
    trimesh.creation.icosphere(subdivisions=2).export(other)
    rec = render_file(coded, tmp_path / "x.png", compare=other, width=400, height=200)
    assert rec["iou"] == decoder.read(coded).header.metrics["iou"]
    assert rec["caption"].startswith("IoU at encode")


def test_decode_resolution(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                           coded: Path) -> None:
    out = tmp_path / "fine.png"
    assert run(capsys, "render", coded, "-o", out, "--resolution", "40", "--width", "120",
               "--height", "90")[0] == 0
    assert_picture(out, 120, 90)


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path, coded: Path,
                      box_mesh_path: Path) -> None:
    code, _, err = run(capsys, "render", coded, "-o", tmp_path / "x.jpg")
    assert code == 2 and ".png" in err
    code, _, err = run(capsys, "render", box_mesh_path, "--compare", box_mesh_path,
                       "-o", tmp_path / "y.png")
    assert code == 2 and ".occ" in err
    code, _, err = run(capsys, "render", coded, "-o", tmp_path / "z.png", "--view", "back")
    assert code == 2 and err.count("\n") == 1
    out = tmp_path / "exists.png"
    out.write_bytes(b"x")
    code, _, err = run(capsys, "render", coded, "-o", out)
    assert code == 3 and "--force" in err
    assert out.read_bytes() == b"x"
    code, _, err = run(capsys, "render", tmp_path / "missing.occ", "-o", tmp_path / "m.png")
    assert code == 2 and not (tmp_path / "m.png").exists()


def test_caption_and_up_axis(tmp_path: Path) -> None:
    a, b = tmp_path / "a.obj", tmp_path / "a.occ"
    a.write_bytes(b"x" * 10_000)
    b.write_bytes(b"y" * 400)
    assert caption(0.98765, "IoU", a, b, 1234) == (
        "IoU 98.77 %   |   a.obj 10,000 B  ->  a.occ 400 B (25x smaller), 1,234 params")
    assert guess_up("x.GLB") == "y" and guess_up("x.gltf") == "y"
    # OBJ, PLY and OFF are y-up by convention now (the bunny lay on its back when they were z)
    assert guess_up("x.obj") == "y" and guess_up("x.ply") == "y" and guess_up("x.off") == "y"
    assert guess_up("x.stl") == "z" and guess_up(None) == "z"


def test_render_needs_no_tensorflow(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    coded: Path, box_mesh_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow -> ImportError
    out = tmp_path / "no-tf.png"
    assert run(capsys, "render", coded, "--compare", box_mesh_path, "-o", out,
               "--width", "320", "--height", "160")[0] == 0
    assert_picture(out, 320, 160)
