"""``occcodec batch`` and directory ``decode``: plan, resume, failures, interruption, bytes.

Shapes are tiny (16^3 grids, a fixed 8-unit network) so that the whole file runs in a few
minutes on two contended cores; each encode still starts a fresh worker process with
TensorFlow, as a real batch does. Runs that several tests inspect are module fixtures.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from occcodec import cli, decoder
from occcodec.batch import plan as batchplan
from occcodec.batch import run as batch

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--resolution", "16", "--preset", "fast", "--arch", "8:relu"]


def run_main(*argv: object) -> tuple[int, str]:
    """``occcodec.cli.main`` with stdout captured (module fixtures cannot use capsys)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue()


def run_json(*argv: object) -> tuple[int, dict[str, Any]]:
    code, text = run_main(*argv, "--json")
    return code, json.loads(text)


def manifest(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / batchplan.MANIFEST).read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    assert [r["path"] for r in recs] == sorted(r["path"] for r in recs)
    return {r["path"]: r for r in recs}


def leftovers(out: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes (``.NAME.*.tmp.EXT``)."""
    return [p for p in out.rglob(".*") if ".tmp" in p.name]


def encode_cli(src: Path, dst: Path, *extra: str) -> bytes:
    """The reference: ``occcodec encode`` in its own process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "occcodec", "encode", str(src), "-o", str(dst),
                    "-q", *SMALL, *extra], check=True, env=env, capture_output=True)
    return dst.read_bytes()


def make_shapes(root: Path, broken: bool) -> Path:
    import trimesh

    (root / "nested" / "deep").mkdir(parents=True)
    box = trimesh.creation.box(extents=(2.0, 1.2, 0.8))
    box.apply_translation((3.0, -1.0, 2.0))
    box.export(root / "box.stl")
    trimesh.creation.icosphere(subdivisions=2).export(root / "nested" / "deep" / "ball.obj")
    if broken:
        (root / "nested" / "broken.ply").write_bytes(b"ply\nformat nonsense\nend_header\n\x00")
        (root / "readme.txt").write_text("not a shape")
        (root / ".hidden").mkdir()
        (root / ".hidden" / "ignored.obj").write_text("hidden folders are not walked")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two meshes (one nested two levels down), a corrupt .ply, a .txt, a hidden folder."""
    return make_shapes(tmp_path_factory.mktemp("tree") / "in", broken=True)


@pytest.fixture(scope="module")
def first_run(tree: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[int, dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("first") / "out"
    code, result = run_json("batch", tree, "-o", out, "--jobs", "2", *SMALL)
    return code, result, out


# ---------------------------------------------------------------------- whole runs


def test_batch_tree_exit_code_manifest_and_outputs(
        tree: Path, first_run: tuple[int, dict[str, Any], Path]) -> None:
    code, result, out = first_run
    assert code == 1  # the corrupt file failed; the others went on
    recs = manifest(out)
    assert set(recs) == {"box.stl", "nested/deep/ball.obj", "nested/broken.ply", "readme.txt"}
    for rel, occ in (("box.stl", "box.occ"), ("nested/deep/ball.obj", "nested/deep/ball.occ")):
        r = recs[rel]
        assert r["status"] == "ok" and r["error"] is None and r["output"] == occ
        data = (out / occ).read_bytes()
        assert r["occ_bytes"] == len(data) and r["input_bytes"] == (tree / rel).stat().st_size
        assert r["params"] == 41 and r["arch"] == "8:relu" and 0.0 <= r["iou"] <= 1.0
        assert r["device"] == "CPU" and r["seconds"] > 0 and len(r["sha256"]) == 64
        assert r["ratio"] == round(r["input_bytes"] / r["occ_bytes"], 2)
        decoder.load(data)
    bad = recs["nested/broken.ply"]
    assert bad["status"] == "failed" and "cannot be read as a .ply mesh" in bad["error"]
    assert not (out / "nested" / "broken.occ").exists()
    assert recs["readme.txt"]["status"] == "skipped"
    assert "not a supported input" in recs["readme.txt"]["note"]
    assert not leftovers(out) and not list(out.rglob("*ignored*"))
    s = result["summary"]
    assert (s["ok"], s["failed"], s["up_to_date"], s["not_shapes"]) == (2, 1, 0, 1)
    assert (s["jobs"], s["threads"], s["engine"]) == (2, 1, "local")
    assert s["shapes_per_hour"] > 0 and s["mean_params"] == 41
    assert [r["path"] for r in result["records"]] == sorted(recs)


def test_batch_jobs2_bytes_equal_encode_with_its_threads(
        tree: Path, first_run: tuple[int, dict[str, Any], Path], tmp_path: Path) -> None:
    _, result, out = first_run
    threads = result["summary"]["threads"]  # cores // 2 with --jobs 2
    ref = encode_cli(tree / "box.stl", tmp_path / "box.occ", "--threads", str(threads))
    assert (out / "box.occ").read_bytes() == ref


def test_batch_rerun_skips_done_retries_failed_replaces_corrupt(
        first_run: tuple[int, dict[str, Any], Path], tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(first_run[2], out)
    before = {p: (out / p).stat().st_mtime_ns for p in ("box.occ", "nested/deep/ball.occ")}
    code, result = run_json("batch", tree, "-o", out, "--jobs", "2", *SMALL)
    assert code == 1  # the corrupt input is retried and fails again
    recs = manifest(out)
    for rel in ("box.stl", "nested/deep/ball.obj"):
        assert recs[rel]["status"] == "skipped" and recs[rel]["note"] == "up to date"
        assert recs[rel]["params"] == 41 and recs[rel]["device"] == "CPU"  # kept from run 1
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before
    assert recs["nested/broken.ply"]["status"] == "failed"
    assert result["summary"]["up_to_date"] == 2 and result["summary"]["ok"] == 0

    good = (out / "box.occ").read_bytes()
    (out / "box.occ").write_bytes(good[:-9])  # truncated: must be re-encoded, not trusted
    code, _ = run_json("batch", tree, "-o", out, "--jobs", "2", *SMALL)
    rec = manifest(out)["box.stl"]
    assert code == 1 and rec["status"] == "ok" and "unreadable" in rec["note"]
    assert (out / "box.occ").read_bytes() == good


@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """--jobs 1 with the worker of ball.obj SIGKILLed mid-training; then a plain rerun."""
    root = tmp_path_factory.mktemp("kill")
    src = make_shapes(root / "in", broken=False)
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OCCCODEC_TEST_KILL_AT", "ball.obj@train")
        code1, res1 = run_json("batch", src, "-o", out, "--jobs", "1", *SMALL)
    recs1, left1 = manifest(out), leftovers(out)
    occs1 = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.occ"))
    code2, res2 = run_json("batch", src, "-o", out, "--jobs", "1", *SMALL)
    return {"src": src, "out": out, "code1": code1, "res1": res1, "recs1": recs1,
            "left1": left1, "occs1": occs1, "code2": code2, "res2": res2, "recs2": manifest(out)}


def test_batch_killed_worker_is_a_failure_and_the_run_goes_on(
        killed_then_resumed: dict[str, Any]) -> None:
    k = killed_then_resumed
    assert k["code1"] == 1
    ball = k["recs1"]["nested/deep/ball.obj"]
    assert ball["status"] == "failed"
    assert ball["error"] == "worker killed by signal 9 (SIGKILL) (out of memory?)"
    assert k["recs1"]["box.stl"]["status"] == "ok"
    assert k["occs1"] == ["box.occ"] and not k["left1"]


def test_batch_resume_after_kill_completes(killed_then_resumed: dict[str, Any]) -> None:
    k = killed_then_resumed
    assert k["code2"] == 0
    assert k["recs2"]["box.stl"]["status"] == "skipped"
    assert k["recs2"]["nested/deep/ball.obj"]["status"] == "ok"
    assert k["res2"]["summary"]["ok"] == 1 and k["res2"]["summary"]["up_to_date"] == 1


def test_batch_jobs1_bytes_equal_encode(killed_then_resumed: dict[str, Any],
                                        tmp_path: Path) -> None:
    k = killed_then_resumed
    from occcodec.encoder.pipeline import default_threads

    assert k["res1"]["summary"]["threads"] == default_threads()  # encode's own default
    ref = encode_cli(k["src"] / "box.stl", tmp_path / "box.occ")  # no --threads
    assert (k["out"] / "box.occ").read_bytes() == ref


def test_batch_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    src = make_shapes(tmp_path / "in", broken=False)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "occcodec", "batch", str(src), "-o", str(out),
                             "--jobs", "1", *SMALL], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            # a shell's background job ignores SIGINT, and so would the child
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if lines.get(timeout=deadline - time.monotonic()).startswith("start "):
                break
        time.sleep(2.0)  # the worker is now busy on the first shape
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        code = proc.wait(timeout=30)
        stopped = time.monotonic() - t0
    finally:
        proc.kill()
    assert code == 130
    assert stopped < 10, f"took {stopped:.1f} s to stop"
    assert not leftovers(out)
    for occ in out.rglob("*.occ"):
        decoder.read(occ)  # whatever is there is complete
    recs = manifest(out)  # parses
    assert all(r["status"] in ("ok", "skipped") for r in recs.values())
    code, _result = run_json("batch", src, "-o", out, "--jobs", "1", *SMALL)
    assert code == 0
    assert {r["status"] for r in manifest(out).values()} <= {"ok", "skipped"}
    assert (out / "box.occ").is_file() and (out / "nested" / "deep" / "ball.occ").is_file()


# ------------------------------------------------------------------ decode a directory


def test_decode_directory_mirrors_tree(first_run: tuple[int, dict[str, Any], Path],
                                       tmp_path: Path) -> None:
    occ_dir = tmp_path / "occ"
    shutil.copytree(first_run[2], occ_dir)
    (occ_dir / "junk.occ").write_bytes(b"not an occ file")
    dec = tmp_path / "meshes"
    code, result = run_json("decode", occ_dir, "-o", dec, "--format", "ply")
    assert code == 1  # junk.occ
    recs = {r["path"]: r for r in result["records"]}
    assert recs["junk.occ"]["status"] == "failed" and "magic" in recs["junk.occ"]["error"]
    assert recs["manifest.jsonl"]["status"] == "skipped"
    for rel in ("box.ply", "nested/deep/ball.ply"):
        assert recs[rel.replace(".ply", ".occ")]["status"] == "ok"
        one = tmp_path / "one.ply"  # the same as decoding the file alone
        assert run_main("decode", occ_dir / rel.replace(".ply", ".occ"), "-o", one,
                        "--force")[0] == 0
        assert (dec / rel).read_bytes() == one.read_bytes()
    assert not leftovers(dec) and not (dec / "junk.ply").exists()
    (occ_dir / "junk.occ").unlink()
    code, result = run_json("decode", occ_dir, "-o", dec, "--format", "ply")
    assert code == 0 and result["summary"]["skipped"] == 3  # 2 up to date + the manifest


# ------------------------------------------------------------------ errors and units


def test_batch_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.obj"
    f.write_text("x")
    assert cli.main(["batch", str(f), "-o", str(tmp_path / "o")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert cli.main(["batch", str(tmp_path), "-o", str(tmp_path / "o"), "--address", "x"]) == 2
    assert "--address needs --engine ray" in capsys.readouterr().err


def test_batch_ray_engine_without_ray_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = cli.main(["batch", str(tmp_path), "-o", str(tmp_path / "o"), "--engine", "ray"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == ("occcodec: error: the Ray engine needs the ray extra: "
                   "pip install 'occcodec[ray]'")


def test_output_names_keep_extensions_only_on_clashes() -> None:
    names = batchplan.output_names(["a/c.obj", "a/c.stl", "a/d.ply", "b/c.obj", "a/c.obj.off"],
                               ".occ")
    assert names == {"a/c.obj": "a/c.obj.occ", "a/c.stl": "a/c.stl.occ", "a/d.ply": "a/d.occ",
                     "b/c.obj": "b/c.occ", "a/c.obj.off": "a/c.obj.off.occ"}
    assert batchplan.output_names(["X.obj", "x.stl"], ".occ") == {"X.obj": "X.obj.occ",
                                                              "x.stl": "x.stl.occ"}


def test_plan_leaves_out_hidden_entries_and_an_inner_output_dir(tmp_path: Path) -> None:
    for rel in ("m/a.obj", "m/.b.obj", ".git/c.obj", "out/d.obj", "e.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    found, others = batchplan.plan(tmp_path, tmp_path / "out", frozenset({".obj"}), ".occ")
    assert [(i.rel, i.out_rel) for i in found] == [("m/a.obj", "m/a.occ")]
    assert [i.rel for i in others] == ["e.txt"]


def test_resolve_jobs_threads() -> None:
    assert batch.resolve_jobs(1, 0, 8, None) == (1, 8)  # encode's default: every core
    assert batch.resolve_jobs(3, 0, 8, None) == (3, 2)
    assert batch.resolve_jobs(16, 0, 8, None) == (16, 1)
    assert batch.resolve_jobs(2, 5, 8, None) == (2, 5)  # --threads wins
    assert batch.resolve_jobs(None, 0, 8, None) == (8, 1)  # a job per core
    assert batch.resolve_jobs(None, 0, 8, 2 * batch.WORKER_BYTES) == (2, 4)  # memory caps it
    fine = batch.worker_bytes(512)
    assert fine > batch.worker_bytes(128) == batch.WORKER_BYTES
    assert batch.resolve_jobs(None, 0, 8, 4 * batch.WORKER_BYTES, fine) == (1, 8)


def test_check_existing_compares_hash_and_options(
        first_run: tuple[int, dict[str, Any], Path], tree: Path) -> None:
    from occcodec.shapes.inputs import sha256_file

    _, _result, out = first_run
    item = batchplan.Item("box.stl", tree / "box.stl", 0, out / "box.occ", "box.occ")
    sha = bytes.fromhex(sha256_file(tree / "box.stl"))
    opts = decoder.read(out / "box.occ").header.options
    assert batchplan.check_existing(item, sha, opts)[0] is not None
    assert batchplan.check_existing(item, bytes(32), opts) == (None, "replaced: the input changed")
    assert batchplan.check_existing(item, sha, {**opts, "seed": 1}) == (
        None, "replaced: the encode options changed")
