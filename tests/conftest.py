"""Shared fixtures: tiny shapes made on the fly, and the third-party meshes when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_MESHES = Path(__file__).resolve().parents[2] / "shared" / "meshes"

try:  # property tests: a small default profile, a heavier one on request
    from hypothesis import settings

    settings.register_profile("default", max_examples=40, deadline=None)
    settings.register_profile("slow", max_examples=1000, deadline=None)
    settings.load_profile(os.environ.get("OCC_HYPOTHESIS_PROFILE", "default"))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def shared_meshes() -> Path:
    """The project's third-party test meshes (not committed); skip when absent."""
    if not SHARED_MESHES.is_dir():
        pytest.skip("../shared/meshes is not present")
    return SHARED_MESHES


@pytest.fixture(scope="session")
def box_mesh_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed mesh: a box with a through-hole, as an STL."""
    import trimesh

    d = tmp_path_factory.mktemp("meshes")
    box = trimesh.creation.box(extents=(2.0, 1.2, 0.8))
    box.apply_translation((10.0, -3.0, 5.0))  # off-origin: tests the stored transform
    path = d / "box.stl"
    box.export(path)
    return path


@pytest.fixture(scope="session")
def sphere_npz_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20x18x24 voxel grid (non-cubic) holding an ellipsoid."""
    d = tmp_path_factory.mktemp("voxels")
    idx = np.indices((20, 18, 24)).astype(float)
    c = np.array([9.5, 8.5, 11.5])[:, None, None, None]
    r = np.array([7.0, 6.0, 9.0])[:, None, None, None]
    grid = (((idx - c) / r) ** 2).sum(axis=0) <= 1.0
    path = d / "ellipsoid.npz"
    np.savez_compressed(path, occupancy=grid)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``occcodec.cli.main`` on ``argv``; returns (exit code, stdout, stderr)."""
    from occcodec.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


#: A fixed small network with the default preset's final budget: a usable fit in seconds;
#: fp16 weights in a v1 file, which the eval/api tests take apart (low-bit v2 files, the
#: default, are exercised in test_rate, test_cli and test_format_v2).
SMALL_ENCODE = ["--preset", "default", "--resolution", "20", "--threads", "1", "-q",
                "--arch", "16:relu,16:relu", "--quant", "fp16"]


@pytest.fixture(scope="session")
def coded_box(tmp_path_factory: pytest.TempPathFactory, box_mesh_path: Path) -> Path:
    """``box_mesh_path`` encoded with :data:`SMALL_ENCODE`."""
    from occcodec.cli import main

    out = tmp_path_factory.mktemp("coded") / "box.occ"
    assert main(["encode", str(box_mesh_path), "-o", str(out), *SMALL_ENCODE]) == 0
    return out


@pytest.fixture(scope="session")
def tf_one_thread() -> None:
    """Configure TensorFlow's thread pools before a test touches it directly.

    TensorFlow fixes its pools when its runtime starts, so a unit test that runs TensorFlow
    ops first must start the runtime the way the encoder does (one intra-op thread).
    """
    from occcodec.encoder.tf import configure

    configure()
