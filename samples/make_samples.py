"""Build the small sample shapes shipped in samples/ (deterministic: no randomness).

    python samples/make_samples.py [--out DIR] [--force]

bracket.stl  CAD-like L bracket with two bolt holes (manifold3d booleans), watertight
torus.ply    a torus (genus 1), watertight
mug.obj      a mug: open cavity plus a handle (manifold3d booleans), watertight
cloth.obj    an open, single-sided wavy sheet: use it with --fill shell
blob.npz     a 40x32x48 (non-cubic) voxel grid of three overlapping ellipsoids, key 'occupancy'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import manifold3d as mf
import numpy as np
import trimesh

SAMPLES_DIR = Path(__file__).resolve().parent
try:
    import occcodec  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(SAMPLES_DIR.parent))

from occcodec.fsutil import atomic_output
from occcodec.shapes.gridio import write_npz


def _to_manifold(mesh: trimesh.Trimesh) -> mf.Manifold:
    return mf.Manifold(
        mf.Mesh(
            vert_properties=np.asarray(mesh.vertices, dtype=np.float32),
            tri_verts=np.asarray(mesh.faces, dtype=np.uint32),
        )
    )


def _to_trimesh(solid: mf.Manifold) -> trimesh.Trimesh:
    m = solid.to_mesh()
    return trimesh.Trimesh(
        vertices=np.asarray(m.vert_properties)[:, :3], faces=np.asarray(m.tri_verts), process=True
    )


def bracket() -> trimesh.Trimesh:
    """An L bracket (mm): 60x40x8 base, 8x40x40 upright, one hole through each."""
    base = mf.Manifold.cube((60.0, 40.0, 8.0))
    upright = mf.Manifold.cube((8.0, 40.0, 40.0))
    hole_base = mf.Manifold.cylinder(20.0, 6.0, 6.0, 32).translate((38.0, 20.0, -5.0))
    hole_up = (
        mf.Manifold.cylinder(20.0, 5.0, 5.0, 32)
        .rotate((0.0, 90.0, 0.0))
        .translate((-5.0, 20.0, 26.0))
    )
    return _to_trimesh((base + upright) - hole_base - hole_up)


def torus() -> trimesh.Trimesh:
    return trimesh.creation.torus(
        major_radius=1.0, minor_radius=0.35, major_sections=48, minor_sections=24
    )


def mug() -> trimesh.Trimesh:
    """A mug: a cylinder with an open cavity and a half-torus handle on its side."""
    outer = mf.Manifold.cylinder(2.2, 1.0, 1.0, 64)
    cavity = mf.Manifold.cylinder(2.5, 0.85, 0.85, 64).translate((0.0, 0.0, 0.15))
    ring = trimesh.creation.torus(
        major_radius=0.55, minor_radius=0.12, major_sections=40, minor_sections=16
    )
    # Stand the ring up in the xz-plane and put its centre on the mug's wall.
    handle = _to_manifold(ring).rotate((90.0, 0.0, 0.0)).translate((1.0, 0.0, 1.1))
    return _to_trimesh((outer + handle) - cavity)


def cloth() -> trimesh.Trimesh:
    """An open 32x32-vertex height field z = 0.15 sin(3x) cos(2y) over [-1, 1]^2."""
    n = 32
    xs = np.linspace(-1.0, 1.0, n)
    x, y = np.meshgrid(xs, xs, indexing="ij")
    z = 0.15 * np.sin(3.0 * x) * np.cos(2.0 * y)
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (i * n + j).ravel()
    b, c, d = a + n, a + n + 1, a + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def blob() -> np.ndarray:
    """Three overlapping ellipsoids in a 40x32x48 grid (index space)."""
    x, y, z = np.meshgrid(np.arange(40), np.arange(32), np.arange(48), indexing="ij")
    grid = np.zeros((40, 32, 48), dtype=bool)
    for (cx, cy, cz), (rx, ry, rz) in [
        ((20.0, 16.0, 18.0), (14.0, 11.0, 12.0)),
        ((14.0, 14.0, 32.0), (8.0, 8.0, 11.0)),
        ((27.0, 18.0, 34.0), (7.0, 9.0, 8.0)),
    ]:
        grid |= ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0
    return grid


MESHES = {"bracket.stl": bracket, "torus.ply": torus, "mug.obj": mug, "cloth.obj": cloth}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="output directory")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    for name, build in MESHES.items():
        mesh = build()
        target = args.out / name
        with atomic_output(target, args.force) as tmp:
            mesh.export(tmp, file_type=target.suffix[1:])
        info = f"{len(mesh.faces)} faces, watertight={mesh.is_watertight}"
        print(f"{target}: {info}", file=sys.stderr)
    grid = blob()
    write_npz(args.out / "blob.npz", grid, args.force)
    print(f"{args.out / 'blob.npz'}: {grid.shape}, {int(grid.sum())} voxels", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
