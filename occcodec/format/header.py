"""The HEAD section: the msgpack map that names the architecture and how to decode it.

Keys (all strings; types as msgpack types; see ``formats/occ-v1.md``):

==========  =========================================================================
encoder     str, e.g. ``"occcodec 0.1.0"``
grid        array of 3 uint: the encoded grid's shape (nx, ny, nz)
center      array of 3 float64: world coordinates of the grid's centre
scale       float64: world units per normalised unit (world = center + scale * p)
fill        str: ``solid``, ``shell`` or ``given`` (a voxel grid used as given)
arch        map: ``encoding`` {type: identity | posenc, levels}, ``layers`` [{units,
            activation}], ``output`` ``"sigmoid"``
quant       str: ``fp32``, ``fp16``, ``int8`` or ``int8-layer``
weights     map: ``codec`` ``"zstd"``, ``raw_bytes`` uint
source      map: ``kind`` (mesh | voxels), ``sha256`` (bin 32: the input file's hash)
options     map: the encode options that produced the file (preset, seed, threads, ...)
metrics     map: ``iou``, ``accuracy`` (float64, on the encoded grid, after quantization),
            ``params`` (uint)
==========  =========================================================================

Readers ignore keys they do not know (a newer minor version may add some).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from occcodec.errors import FormatError
from occcodec.format import limits
from occcodec.format.arch import Arch
from occcodec.format.quant import SCHEMES

FILLS = ("solid", "shell", "given")


@dataclass
class Header:
    """The fields a decoder needs, validated; ``raw`` keeps the whole map.

    ``arch`` is None for a grid-mode file (format 2, a losslessly coded grid, no network);
    ``quant`` is then ``"ctx-grid"``.
    """

    arch: Arch | None
    grid: tuple[int, int, int]
    center: tuple[float, float, float]
    scale: float
    fill: str
    quant: str
    raw: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        m = self.raw.get("metrics", {})
        return m if isinstance(m, dict) else {}

    @property
    def options(self) -> dict[str, Any]:
        o = self.raw.get("options", {})
        return o if isinstance(o, dict) else {}


def _num(v: object) -> TypeGuard[int | float]:
    # finite: an infinite or NaN centre or scale would put every vertex at inf or NaN
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_header(raw: dict[str, Any]) -> Header:
    """Validate the keys a decoder needs.

    Raises
    ------
    FormatError
        Naming the first missing or malformed key.
    """
    def bad(key: str, why: str) -> FormatError:
        return FormatError(f"header key {key!r} {why}: the file is damaged or not from occcodec")

    try:
        arch = Arch.from_header(raw.get("arch"))
    except ValueError as exc:
        raise bad("arch", f"is invalid ({exc})") from None
    grid = raw.get("grid")
    if not (isinstance(grid, list) and len(grid) == 3
            and all(type(n) is int and 1 <= n <= 4096 for n in grid)):
        raise bad("grid", "is not 3 sizes in 1..4096")
    center = raw.get("center")
    if not (isinstance(center, list) and len(center) == 3 and all(_num(c) for c in center)):
        raise bad("center", "is not 3 numbers")
    scale = raw.get("scale")
    if not (_num(scale) and scale > 0):
        raise bad("scale", "is not a positive number")
    fill = raw.get("fill")
    if fill not in FILLS:
        raise bad("fill", f"is not one of {', '.join(FILLS)}")
    quant = raw.get("quant")
    if type(quant) is not str or quant not in SCHEMES:
        raise bad("quant", f"is not one of {', '.join(SCHEMES)}")
    limits.check("params", arch.params, f"the network {arch}"[:80])
    return Header(arch, tuple(grid), tuple(float(c) for c in center),  # type: ignore[arg-type]
                  float(scale), str(fill), str(quant), raw)  # type: ignore[arg-type]


def build_header(*, encoder: str, arch: Arch, grid: tuple[int, ...], center: tuple[float, ...],
                 scale: float, fill: str, quant: str, raw_bytes: int, source_kind: str,
                 source_sha256: bytes, options: dict[str, Any],
                 metrics: dict[str, Any]) -> dict[str, Any]:
    """The header map in its canonical key order (the order is part of determinism)."""
    return {
        "encoder": encoder,
        "grid": [int(n) for n in grid],
        "center": [float(c) for c in center],
        "scale": float(scale),
        "fill": fill,
        "arch": arch.to_header(),
        "quant": quant,
        "weights": {"codec": "zstd", "raw_bytes": int(raw_bytes)},
        "source": {"kind": source_kind, "sha256": bytes(source_sha256)},
        "options": options,
        "metrics": metrics,
    }
