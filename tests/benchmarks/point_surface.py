"""Exact point-to-surface distances against the original mesh, for any decoded file.

    python tests/benchmarks/point_surface.py MESH DECODED [DECODED ...] [-r 512] [--points N]

Since 2026-12-04 ``occcodec eval`` and ``bench`` measure their surface figures this way
(:func:`occcodec.tools.metrics.surface_distances`: from each sample to the nearest point of
the other *surface*, libigl's AABB tree, so a perfect copy scores 0); before, they measured
sample to nearest sample, with a floor of about 1.3-1.7 voxels at 512^3 with 100 k points.
This script applies the same function to files outside a bench run. DECODED is an ``.occ``
(meshed at ``-r`` as ``occcodec decode`` writes it, specks dropped) or a mesh file (``.drc``
via DracoPy, else trimesh). Distances are printed in the mesh's units and in voxel edges at
``-r``: of the first ``.occ``'s frame, or the mesh's longest bounding-box side over ``-r``
without one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def point_surface(a: object, b: object, n: int, seed: int = 0) -> dict[str, float]:
    """Symmetric mean and 95th-percentile distance, each direction from ``n`` area-uniform
    samples of one mesh to the other surface (``surface_distances``)."""
    from occcodec.tools.metrics import surface_distances

    d = surface_distances(a, b, n, seed)
    return {"chamfer": float(d["chamfer"]), "hausdorff_95": float(d["hausdorff_95"])}


def _load(path: Path, resolution: int) -> tuple[object, float | None]:
    """The mesh of ``path``, and its voxel edge at ``resolution`` (an ``.occ``) or None."""
    import trimesh

    if path.suffix == ".occ":
        import occcodec

        shape = occcodec.decode(path.read_bytes())
        return shape.mesh(resolution=resolution), 2 * shape.header.scale / resolution
    if path.suffix == ".drc":
        import DracoPy

        d = DracoPy.decode(path.read_bytes())
        mesh: object = trimesh.Trimesh(np.asarray(d.points, np.float64), np.asarray(d.faces, np.int64),
                               process=False)
    else:
        mesh = trimesh.load(path, force="mesh")
    return mesh, None


if __name__ == "__main__":
    import trimesh

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mesh", type=Path)
    ap.add_argument("decoded", type=Path, nargs="+")
    ap.add_argument("-r", "--resolution", type=int, default=512)
    ap.add_argument("--points", type=int, default=100_000)
    a = ap.parse_args()
    ref = trimesh.load(a.mesh, force="mesh")
    loaded = [(path, *_load(path, a.resolution)) for path in a.decoded]
    h = next((e for _, _, e in loaded if e is not None),
             float(np.max(ref.extents)) / a.resolution)
    for path, mesh, _ in loaded:
        d = point_surface(ref, mesh, a.points)
        print(f"{path.name}: chamfer {d['chamfer']:.6g} ({d['chamfer'] / h:.3f} vox), "
              f"H95 {d['hausdorff_95']:.6g} ({d['hausdorff_95'] / h:.3f} vox)", flush=True)
