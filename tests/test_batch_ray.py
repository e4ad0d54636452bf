"""``occcodec batch --engine ray`` on a local Ray instance: the same files as local workers.

Skipped where the optional ``ray`` extra is not installed (``pip install 'occcodec[ray]'``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from test_batch import SMALL, make_shapes, manifest, run_json

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A Ray instance with 2 CPUs started by the test (batch must reuse, not restart it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_gives_the_local_engines_files(local_ray: None, tmp_path: Path) -> None:
    src = make_shapes(tmp_path / "in", broken=False)
    (src / "nested" / "broken.ply").write_bytes(b"ply\nformat nonsense\n")
    common = ["--jobs", "2", "--threads", "1", *SMALL]
    code_local, local = run_json("batch", src, "-o", tmp_path / "local", *common)
    code_ray, remote = run_json("batch", src, "-o", tmp_path / "ray", "--engine", "ray", *common)
    assert ray.is_initialized()  # the test's instance was used and left running
    assert code_local == code_ray == 1  # the broken file fails on both engines
    for rel in ("box.occ", "nested/deep/ball.occ"):
        assert (tmp_path / "ray" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()
    recs = manifest(tmp_path / "ray")
    assert recs["box.stl"]["status"] == "ok" and recs["box.stl"]["device"].startswith("CPU on ")
    assert recs["nested/broken.ply"]["status"] == "failed"
    assert "cannot be read as a .ply mesh" in recs["nested/broken.ply"]["error"]
    assert remote["summary"]["engine"] == "ray" and remote["summary"]["threads"] == 1
    assert json.dumps(local["summary"]["ok"]) == json.dumps(remote["summary"]["ok"]) == "2"
