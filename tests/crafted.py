"""Crafted inputs for the reliability and fuzz tests, built in code (no opaque blobs).

Shapes: a thin-walled open cup (like ShapeNet's mugs, the shape that used to encode to an
empty grid with ``IoU 0.00 %``), a thin knife-like blade, a mesh with one stray vertex at
1e30, and a bunny-like blob lying along +y (a Y-up OBJ). Files: ``.occ`` containers with any
header (repeated keys included) and ``.npz`` files whose ``.npy`` header declares any shape.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import trimesh
import zstandard

from occcodec.format import container


def open_cup(wall: float = 0.01, sections: int = 48) -> trimesh.Trimesh:
    """A single-sheet open cup (side and bottom, no lid): radius 0.4, height 1, z up.

    One sheet of triangles, not watertight: ``--fill auto`` keeps its surface voxels, a
    1-voxel-thick shell, the hardest kind of shape for a small network. ``wall`` > 0
    gives the sheet a second, inner wall that far inside (still open at the top).
    """
    profile = [(0.0, 0.0), (0.4, 0.0), (0.4, 1.0)]
    if wall > 0:
        profile += [(0.4 - wall, 1.0), (0.4 - wall, wall), (0.0, wall)]
    return trimesh.creation.revolve(np.asarray(profile), sections=sections)


def blade(length: float = 1.0, width: float = 0.12, thickness: float = 0.004) -> trimesh.Trimesh:
    """A knife-like blade: a closed, very thin box tapering to a point along +x."""
    box = trimesh.creation.box(extents=(length, width, thickness))
    v = box.vertices.copy()
    tip = v[:, 0] > 0
    v[tip, 1] *= 0.1  # narrow towards the tip
    return trimesh.Trimesh(v, box.faces, process=False)


def write_stray_vertex_obj(path: Path, mesh: trimesh.Trimesh, far: float = 1e30,
                           used: bool = False) -> Path:
    """``mesh`` as OBJ text with one extra vertex at (far, far, far); with ``used`` a sliver
    face joins it to the first two vertices, else no face uses it."""
    lines = [f"v {float(x)!r} {float(y)!r} {float(z)!r}" for x, y, z in mesh.vertices]
    lines.append(f"v {far!r} {far!r} {far!r}")
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
    if used:
        lines.append(f"f 1 2 {len(mesh.vertices) + 1}")
    path.write_text("\n".join(lines) + "\n")
    return path


def bunny_like_y_up() -> trimesh.Trimesh:
    """A bunny-like shape standing along +y: a wide body resting on y = 0, a smaller head
    above it and two tall ears on top (taller than wide, as a Y-up scan is)."""
    body = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    body.apply_scale((1.0, 0.8, 0.7))
    body.apply_translation((0.0, 0.4, 0.0))
    head = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    head.apply_translation((0.25, 1.05, 0.0))
    ears = []
    for dz in (-0.1, 0.1):
        ear = trimesh.creation.capsule(height=0.5, radius=0.06)  # along z
        ear.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, (1, 0, 0)))
        ear.apply_translation((0.25, 1.55, dz))
        ears.append(ear)
    return trimesh.util.concatenate([body, head, *ears])


# --------------------------------------------------------------------------- containers


def head_bytes(pairs: list[tuple[Any, Any]]) -> bytes:
    """A msgpack map from key/value pairs in order, repeats allowed (a dict cannot hold
    them, so :func:`occcodec.format.container.pack` cannot write one)."""
    packer = msgpack.Packer(use_bin_type=True)
    return packer.pack_map_header(len(pairs)) + b"".join(
        packer.pack(k) + packer.pack(v) for k, v in pairs)


def assemble(head: bytes, raw_weights: bytes) -> bytes:
    """A version-1 container around an already packed header, laid out as ``pack`` does."""
    wgts = zstandard.ZstdCompressor(level=container.ZSTD_LEVEL, write_checksum=False,
                                    write_content_size=True).compress(raw_weights)
    body = [container.PREAMBLE.pack(container.MAGIC, container.MAJOR, container.MINOR, 2)]
    for tag, payload in ((container.TAG_HEAD, head), (container.TAG_WEIGHTS, wgts)):
        body += [container.SECTION.pack(tag, container.FLAG_REQUIRED, len(payload)), payload]
    data = b"".join(body)
    return data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def reseal(data: bytes) -> bytes:
    """``data`` with its trailing CRC-32 recomputed, so that a mutation reaches the parser."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]) & 0xFFFFFFFF)


def npz_declaring(path: Path, shape: tuple[int, ...], dtype: str = "<f8",
                  key: str = "occupancy", payload: bytes = b"\0" * 64) -> Path:
    """An ``.npz`` whose member's ``.npy`` header declares ``shape`` and ``dtype`` but
    holds only ``payload``: a few hundred bytes that ask numpy for any allocation."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{key}.npy", buf.getvalue() + payload)
    return path
