"""Issue 8, reliability: every failure it lists, as a test.

No silent empty results (the encoder's rescue), no resource bombs (npz/binvox headers,
``/dev/zero``, FIFOs, ``--limit``), no internal errors (malformed and odd header keys,
unwritable outputs, extreme weights), and the right messages (float32 frames in ``eval``,
``--arch ""``, inputs checked before outputs, the render's up axis).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import crafted
import numpy as np
import pytest
import trimesh
from conftest import SMALL_ENCODE, run_cli

from occcodec import decoder
from occcodec.encoder import rescue as rescue_mod
from occcodec.errors import FormatError, LimitError, QualityError
from occcodec.format import container, limits, network
from occcodec.format.arch import parse_arch
from occcodec.progress import Progress

VECTOR = Path(__file__).resolve().parents[1] / "formats" / "vectors" / "b-pe2-elu-swish-fp16.occ"
PROC = Path("/proc")
needs_proc = pytest.mark.skipif(not (PROC / "self").exists(), reason="needs Linux /proc")


def one_line(err: str) -> bool:
    """The house's error shape: one line, no traceback."""
    lines = [x for x in err.splitlines() if x.strip()]
    return len(lines) == 1 and "Traceback" not in err and lines[0].startswith("occcodec: ")


def valid_header_and_weights() -> tuple[dict[str, Any], bytes]:
    occ = container.unpack(VECTOR.read_bytes())
    return dict(occ.header), occ.weights


def write_occ(path: Path, header: dict[str, Any], weights: bytes) -> Path:
    path.write_bytes(container.pack(header, weights))
    return path


# ------------------------------------------------------------------ 1. empty shapes


class _Notes(Progress):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


def _rescue(first_iou: float, later: list[float], candidate: bool = True, fixed: bool = False
            ) -> tuple[Any, list[tuple[str, int]], _Notes]:
    arch = parse_arch("8:relu")
    calls: list[tuple[str, int]] = []
    results = iter(later)

    def fit(net: Any, weights: Any, epochs: int) -> tuple[bytes, dict[str, Any]]:
        calls.append((str(net), epochs))
        return str(net).encode(), {"iou": next(results), "accuracy": 0.9, "params": net.params}

    class Cand:
        arch = parse_arch("pe2,16:elu")
        weights = None

    notes = _Notes()
    grid = np.zeros((16, 16, 16), dtype=bool)
    grid[4:12, 4:12, 4:12] = True
    out = rescue_mod.rescue(grid, arch, b"first", {"iou": first_iou, "accuracy": 0.9,
                                                   "params": arch.params},
                            fit=fit, candidate=Cand() if candidate else None,
                            init=lambda net: None, epochs=8, progress=notes,
                            fixed_arch=fixed)
    return out, calls, notes


def test_rescue_leaves_a_captured_shape_alone() -> None:
    (_, raw, _), calls, notes = _rescue(0.97, [])
    assert raw == b"first" and calls == [] and notes.notes == []


def test_rescue_notes_a_rough_shape_without_refitting() -> None:
    (_, raw, _), calls, notes = _rescue(0.7, [])
    assert raw == b"first" and calls == []
    assert any("low fidelity" in n for n in notes.notes)


def test_rescue_escalates_candidate_then_wide_network() -> None:
    (arch, _, metrics), calls, _ = _rescue(0.0, [0.1, 0.8])
    assert calls == [("pe2,16:elu", 32), (rescue_mod.RESCUE_ARCH, 32)]
    assert str(arch) == rescue_mod.RESCUE_ARCH and metrics["iou"] == 0.8


def test_rescue_stops_at_the_first_success() -> None:
    (arch, _, metrics), calls, _ = _rescue(0.0, [0.6])
    assert len(calls) == 1 and str(arch) == "pe2,16:elu" and metrics["iou"] == 0.6


def test_rescue_refuses_an_empty_result() -> None:
    with pytest.raises(QualityError, match=r"IoU 20\.00 %.*no file was written.*try"):
        _rescue(0.0, [0.2, 0.1])


def test_rescue_without_a_candidate_tries_the_wide_network() -> None:
    (_, _, metrics), calls, _ = _rescue(0.0, [0.9], candidate=False)
    assert calls == [(rescue_mod.RESCUE_ARCH, 32)] and metrics["iou"] == 0.9


def test_rescue_keeps_a_chosen_arch_and_grows_the_budget() -> None:
    (arch, _, metrics), calls, _ = _rescue(0.0, [0.7], candidate=False, fixed=True)
    assert calls == [("8:relu", 32)] and str(arch) == "8:relu" and metrics["iou"] == 0.7
    with pytest.raises(QualityError, match="larger --arch"):
        _rescue(0.0, [0.3], candidate=False, fixed=True)


def test_stray_vertex_does_not_shrink_the_shape(tmp_path: Path) -> None:
    """An unused vertex at 1e30 is not part of the surface: the frame is the surface's."""
    from occcodec.shapes.inputs import load_shape

    sphere = trimesh.creation.icosphere(subdivisions=2)
    plain = tmp_path / "plain.obj"
    crafted.write_stray_vertex_obj(plain, sphere, far=0.0)  # an unused vertex at the centre
    stray = crafted.write_stray_vertex_obj(tmp_path / "stray.obj", sphere)
    a, b = load_shape(plain, 32), load_shape(stray, 32)
    assert b.scale == a.scale and b.center == a.center
    assert np.array_equal(a.occupancy, b.occupancy) and b.occupancy.sum() > 1000
    # a sliver face out to the far vertex is dropped, with a note, not the shape shrunk
    joined = crafted.write_stray_vertex_obj(tmp_path / "joined.obj", sphere, used=True)
    c = load_shape(joined, 32)
    assert c.scale == a.scale and np.array_equal(a.occupancy, c.occupancy)
    assert "dropped 1 face" in c.fill_note


@pytest.mark.slow
@pytest.mark.parametrize("make", ["cup", "blade", "stray"])
def test_fast_encode_never_reports_an_empty_shape(make: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's shapes with --preset fast at 64^3: a file only with IoU >= 50 %."""
    src = tmp_path / f"{make}.obj"
    if make == "cup":
        crafted.open_cup().export(src)
    elif make == "blade":
        crafted.blade().export(src)
    else:
        crafted.write_stray_vertex_obj(src, crafted.open_cup(), used=True)
    out = tmp_path / f"{make}.occ"
    code, stdout, err = run_cli(capsys, "encode", src, "-o", out, "--preset", "fast",
                                "--resolution", "64", "--threads", "1", "-q", "--json")
    if code == 0:
        assert json.loads(stdout)["iou"] >= rescue_mod.FAIL_IOU
    else:
        assert code == 1 and not out.exists() and "could not capture" in err


# ------------------------------------------------------------ 2. malformed decoding keys


def _arch_with(**layer0: Any) -> tuple[dict[str, Any], bytes]:
    header, weights = valid_header_and_weights()
    arch = json.loads(json.dumps(header["arch"]))
    arch["layers"][0].update(layer0)
    header["arch"] = arch
    return header, weights


@pytest.mark.parametrize("change", [
    lambda h: h["arch"]["layers"][0].update(units=True),
    lambda h: h.update(grid=[True, 16, 16]),
    lambda h: h["arch"]["encoding"].update(levels=True),
    lambda h: h.update(scale=True),
    lambda h: h.update(center=[0.0, False, 0.0]),
], ids=["units-true", "grid-true", "levels-true", "scale-true", "center-false"])
def test_booleans_are_not_numbers(change: Any, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    header, weights = valid_header_and_weights()
    header = json.loads(json.dumps(header, default=lambda b: b.hex()))
    change(header)
    data = container.pack(header, weights)
    with pytest.raises(FormatError):
        decoder.load(data)
    code, _, err = run_cli(capsys, "info", write_occ(tmp_path / "b.occ", header, weights))
    assert code == 4 and one_line(err)


def test_repeated_header_key_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    header, weights = valid_header_and_weights()
    pairs = [*list(header.items()), ("scale", 2.0)]
    data = crafted.assemble(crafted.head_bytes(pairs), weights)
    with pytest.raises(FormatError, match="repeats the key 'scale'"):
        decoder.load(data)
    (tmp_path / "r.occ").write_bytes(data)
    code, _, err = run_cli(capsys, "decode", tmp_path / "r.occ", "-o", tmp_path / "r.npz")
    assert code == 4 and one_line(err) and not (tmp_path / "r.npz").exists()


# --------------------------------------------------------- 3. odd informative keys


@pytest.mark.parametrize("key, value", [
    ("metrics", [1, 2, 3]),
    ("metrics", {"iou": "high", "accuracy": True}),
    ("options", ["fast", 3]),
    ("options", {"preset": {"nested": b"\x00\xff"}, b"bytes-key": [1, None]}),
    ("encoder", {"name": "x"}),
    ("source", b"\x01" * 40),
    ("extra", {b"k": float("nan")}),
])
def test_info_shows_odd_informative_keys(key: str, value: Any, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    header, weights = valid_header_and_weights()
    header[key] = value
    path = write_occ(tmp_path / "odd.occ", header, weights)
    code, out, err = run_cli(capsys, "info", path)
    assert code == 0, err
    code, out, err = run_cli(capsys, "info", path, "--json")
    assert code == 0, err
    assert key in json.loads(out)["header"]
    code, _, err = run_cli(capsys, "decode", path, "-o", tmp_path / "odd.npz")
    assert code == 0, err


# --------------------------------------------------------------- 4. unwritable outputs


@needs_proc
@pytest.mark.parametrize("argv", [
    ["encode", "{mesh}", "-o", "/proc/x.occ"],
    ["decode", "{occ}", "-o", "/proc/x.ply"],
    ["decode", "{occ}", "-o", "/proc/x.npz"],
    ["decode", "{occdir}", "-o", "/proc/sys"],
    ["render", "{occ}", "-o", "/proc/x.png"],
    ["eval", "{mesh}", "{occ}", "--errors", "/proc/x.ply"],
    ["batch", "{dir}", "-o", "/proc/batch-out"],
    ["bench", "{dir}", "-o", "/proc/bench-out"],
])
def test_unwritable_output_fails_before_work(argv: list[str], tmp_path: Path,
                                             coded_box: Path, box_mesh_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fill = {"{mesh}": str(box_mesh_path), "{occ}": str(coded_box),
            "{dir}": str(box_mesh_path.parent), "{occdir}": str(coded_box.parent)}
    code, _, err = run_cli(capsys, *[fill.get(a, a) for a in argv])
    assert code == 3 and one_line(err), err
    assert "writ" in err or "cannot create" in err


def test_read_only_directory_is_refused(tmp_path: Path, coded_box: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        probe = ro / "p"
        try:
            probe.write_bytes(b"")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as root: permissions do not stop writes")
        code, _, err = run_cli(capsys, "decode", coded_box, "-o", ro / "x.ply")
        assert code == 3 and "not writable" in err
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------ 5. resource bombs


def test_limit_option_before_and_after_the_command(coded_box: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = limits.current()
    try:
        for argv in (["--limit", "grid=16", "decode", coded_box, "-o", tmp_path / "a.npz",
                      "--resolution", "32"],
                     ["decode", coded_box, "-o", tmp_path / "b.npz", "--resolution", "32",
                      "--limit", "grid=16"]):
            code, _, err = run_cli(capsys, *argv)
            assert code == 5 and one_line(err) and "--limit grid=" in err
        code, _, err = run_cli(capsys, "--limit", "work=1e12", "--limit", "grid=2048",
                               "decode", coded_box, "-o", tmp_path / "c.npz")
        assert code == 0, err
        code, _, err = run_cli(capsys, "info", coded_box, "--limit", "nonsense=3")
        assert code == 2 and one_line(err)
    finally:
        limits.set_limits(**before.__dict__)


def test_npz_declaring_a_huge_array_is_refused_before_loading(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = crafted.npz_declaring(tmp_path / "bomb.npz", (100000, 100000, 100000))
    code, _, err = run_cli(capsys, "encode", bomb, "-o", tmp_path / "bomb.occ")
    assert code == 2 and one_line(err) and "100000" in err
    big = crafted.npz_declaring(tmp_path / "big.npz", (512, 512, 512))
    with limits.raised(memory=1 << 20), pytest.raises(LimitError, match="memory"):
        from occcodec.shapes.gridio import read_npz

        read_npz(big)
    raw = crafted.npz_declaring(tmp_path / "raw.npz", (16, 16, 16), payload=b"\0" * 10)
    code, _, err = run_cli(capsys, "encode", raw, "-o", tmp_path / "raw.occ")
    assert code == 2 and one_line(err)


def test_binvox_larger_than_its_dims_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.binvox"
    path.write_bytes(b"#binvox 1\ndim 16 16 16\ndata\n" + b"\x00\xff" * 20_000)
    code, _, err = run_cli(capsys, "encode", path, "-o", tmp_path / "big.occ")
    assert code == 2 and one_line(err) and "corrupt" in err


def test_special_files_are_refused_at_once(tmp_path: Path) -> None:
    """A FIFO would block and /dev/zero never ends: both refused by a stat, in a subprocess
    so that a regression hangs the child (killed by the timeout), not the test run."""
    fifo = tmp_path / "pipe.occ"
    os.mkfifo(fifo)
    script = ("import sys; from occcodec.cli import main; "
              "sys.exit(max(main(['info', p]) for p in sys.argv[1:]))")
    special = [str(fifo)] + (["/dev/zero"] if Path("/dev/zero").exists() else [])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script, *special], capture_output=True,
                          text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("not a regular file") == len(special)
    assert "Traceback" not in proc.stderr


# -------------------------------------------------------------------- 6. messages


def test_eval_accepts_a_float32_copy_of_the_mesh(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    box = trimesh.creation.box(extents=(2.0, 1.2, 0.8))
    box.apply_translation((10.1, -3.3, 5.7))  # not representable in float32
    src = tmp_path / "box.obj"
    box.export(src)
    occ = tmp_path / "box.occ"
    code, _, err = run_cli(capsys, "encode", src, "-o", occ, *SMALL_ENCODE)
    assert code == 0, err
    for ext in ("stl", "ply", "glb"):
        copy = tmp_path / f"copy.{ext}"
        trimesh.load(src, force="mesh").export(copy)
        code, out, err = run_cli(capsys, "eval", copy, occ, "--json", "--points", "2000")
        assert code == 0, err
        notes = json.loads(out)["notes"]
        assert any("float32 precision" in n for n in notes), notes
    moved = box.copy()
    moved.apply_translation((0.05, 0.0, 0.0))
    moved.export(tmp_path / "moved.obj")
    code, _, err = run_cli(capsys, "eval", tmp_path / "moved.obj", occ)
    assert code == 2 and "not the encoded shape" in err


def test_extreme_weights_give_no_warnings() -> None:
    """fp32 weights of +-3e38 overflow to inf and inf - inf to NaN: no RuntimeWarning."""
    occ = container.unpack((VECTOR.parent / "a-identity-relu-fp32.occ").read_bytes())
    header, n = dict(occ.header), len(occ.weights) // 4
    signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    huge = (signs * 3e38).astype("<f4").tobytes()
    coded = decoder.load(container.pack(header, huge))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        field = coded.logit_grid((16, 16, 16))
        grid = decoder.voxels(coded)
        points = network.logits(coded.header.arch, coded.weights,
                                np.zeros((4, 3), dtype=np.float32))
    assert not np.isfinite(field).all()  # the overflow really happened
    assert grid.dtype == bool and points.shape == (4,)


def test_empty_arch_is_refused(box_mesh_path: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "encode", box_mesh_path, "-o", tmp_path / "x.occ",
                           "--arch", "")
    assert code == 2 and one_line(err) and "--arch" in err and "empty" in err


@pytest.mark.parametrize("argv", [
    ["encode", "{missing}", "-o", "{existing}"],
    ["decode", "{missing}", "-o", "{existing}"],
    ["render", "{missing}", "-o", "{existing_png}"],
    ["eval", "{missing}", "{missing}", "--errors", "{existing}"],
])
def test_input_is_checked_before_output(argv: list[str], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "there.occ"
    existing.write_bytes(b"x")
    png = tmp_path / "there.png"
    png.write_bytes(b"x")
    fill = {"{missing}": str(tmp_path / "missing.obj"), "{existing}": str(existing),
            "{existing_png}": str(png)}
    if argv[0] == "decode":
        existing.rename(tmp_path / "there.ply")
        fill["{existing}"] = str(tmp_path / "there.ply")
        (tmp_path / "there.ply").write_bytes(b"x")
    code, _, err = run_cli(capsys, *[fill.get(a, a) for a in argv])
    assert code == 2 and "does not exist" in err and "already exists" not in err


# ---------------------------------------------------------------------- 7. pictures


def test_up_axis_of_a_bunny_like_y_up_shape() -> None:
    from occcodec.tools.pictures import bottom_heaviness, guess_up

    bunny = crafted.bunny_like_y_up()
    assert bottom_heaviness(bunny)["y"] > 0.05
    assert guess_up("bunny.obj", bunny) == "y"
    assert guess_up(None, bunny) == "y"  # a decoded .occ: no format, the shape decides
    z_up = bunny.copy()
    z_up.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    assert guess_up("bunny.obj", z_up) == "z" and guess_up("bunny.stl", z_up) == "z"
    sym = trimesh.creation.icosphere(subdivisions=1)
    assert guess_up("s.obj", sym) == "y" and guess_up("s.stl", sym) == "z"


def test_render_draws_the_bunny_upright(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bunny.obj"
    crafted.bunny_like_y_up().export(src)
    code, out, err = run_cli(capsys, "render", src, "-o", tmp_path / "b.png", "--json",
                             "--width", "80", "--height", "60")
    assert code == 0, err
    assert json.loads(out)["up"] == "y"


def test_info_never_evaluates_the_network(coded_box: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("info evaluated the network")

    for name in ("logits", "logit_grid", "occupancy_grid"):
        monkeypatch.setattr(network, name, refuse)
    code, _, err = run_cli(capsys, "info", coded_box)
    assert code == 0, err
    code, _, err = run_cli(capsys, "info", coded_box, "--json")
    assert code == 0, err
