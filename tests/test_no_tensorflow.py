"""Decoding never needs TensorFlow: ``info`` and ``decode`` work where importing it fails.

Runs in a subprocess so that the import blocker cannot leak into other tests, and so that a
TensorFlow imported by another test module cannot hide an import from occcodec's decoder.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTOR = ROOT / "formats" / "vectors" / "b-pe2-elu-swish-fp16.occ"

SCRIPT = r"""
import importlib.abc, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is blocked by test_no_tensorflow")
        return None

sys.meta_path.insert(0, NoTensorFlow())
try:
    import tensorflow  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker did not block tensorflow")

from occcodec.cli import main

vector, out, outputs = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
assert main(["info", vector]) == 0
assert main(["info", "--json", vector]) == 0
for ext in outputs:
    assert main(["decode", vector, "-o", f"{out}/x.{ext}"]) == 0, ext
    assert main(["decode", vector, "-o", f"{out}/y.{ext}", "--resolution", "16"]) == 0, ext
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
assert not loaded, loaded
print("NO-TF-OK")
"""


def _run(tmp_path: Path, outputs: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(VECTOR), str(tmp_path), ",".join(outputs)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "NO-TF-OK" in proc.stdout
    for ext in outputs:
        for stem in ("x", "y"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0


def test_info_and_mesh_decode_without_tensorflow(tmp_path: Path) -> None:
    _run(tmp_path, ["ply", "obj"])


@pytest.mark.skipif(importlib.util.find_spec("occcodec.shapes.gridio") is None,
                    reason="occcodec.shapes.gridio (the .npz/.binvox writer) is not there yet")
def test_voxel_decode_without_tensorflow(tmp_path: Path) -> None:
    _run(tmp_path, ["npz", "binvox"])
