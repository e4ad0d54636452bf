"""The ``.occ`` container, format version 1 (specified in ``formats/occ-v1.md``).

Layout, all integers little-endian::

    preamble   magic 8 bytes  89 4F 43 43 0D 0A 1A 0A  ("\\x89OCC\\r\\n\\x1a\\n")
               u16 major (1), u16 minor (0), u32 section count
    sections   each: 4-byte ASCII tag, u32 flags, u64 payload length, payload
    trailer    u32 CRC-32 (zlib / ISO-HDLC) of every byte before it

Version 1 defines two sections, in this order: ``HEAD`` (a msgpack map, see
:mod:`occcodec.format.header`) and ``WGTS`` (the quantized weights as one zstd frame). Flag bit 0
marks a section *required*: a reader that does not know a required section's tag must
refuse the file; unknown optional sections are skipped. New sections (a coded residual for
lossless mode, a coarse level of a hierarchy) can thus be added in a minor version without
breaking old readers, and old files stay valid.

This module imports neither TensorFlow nor trimesh.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zstandard

from occcodec.errors import FormatError, VersionError
from occcodec.format import limits

MAGIC = b"\x89OCC\r\n\x1a\n"
MAJOR = 1
MINOR = 0
PREAMBLE = struct.Struct("<8sHHI")
SECTION = struct.Struct("<4sIQ")
TRAILER = struct.Struct("<I")
FLAG_REQUIRED = 1
TAG_HEAD = b"HEAD"
TAG_WEIGHTS = b"WGTS"
KNOWN_TAGS = frozenset({TAG_HEAD, TAG_WEIGHTS})
ZSTD_LEVEL = 19
#: A header or weights section larger than this is refused before decompression (the
#: ``file`` limit of :mod:`occcodec.format.limits` applies first, to the whole file).
MAX_SECTION = 1 << 30


@dataclass
class OccFile:
    """A parsed container: the header map, the raw (decompressed) weights, section sizes."""

    header: dict[str, object]
    weights: bytes
    version: tuple[int, int] = (MAJOR, MINOR)
    sections: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    total_bytes: int = 0


def pack(header: dict[str, object], weights: bytes) -> bytes:
    """Build a version-1 file from a header map and raw weight bytes.

    Deterministic: the same arguments always give the same bytes (msgpack keeps the map's
    insertion order; zstd at a fixed level, no checksum or size flags that vary).
    """
    head = msgpack.packb(header, use_bin_type=True)
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False,
                                    write_content_size=True)
    wgts = cctx.compress(weights)
    body = [PREAMBLE.pack(MAGIC, MAJOR, MINOR, 2)]
    for tag, payload in ((TAG_HEAD, head), (TAG_WEIGHTS, wgts)):
        body += [SECTION.pack(tag, FLAG_REQUIRED, len(payload)), payload]
    data = b"".join(body)
    return data + TRAILER.pack(zlib.crc32(data) & 0xFFFFFFFF)


def _tag_text(tag: bytes) -> str:
    """A tag for messages: its ASCII text when printable, else its hex bytes."""
    text = tag.decode("ascii", "replace")
    return text if text.isprintable() and text.isascii() else "0x" + tag.hex()


def _sections(data: bytes, count: int) -> list[tuple[bytes, int, bytes]]:
    pos, end, out = PREAMBLE.size, len(data) - TRAILER.size, []
    for index in range(count):
        if pos + SECTION.size > end:
            raise FormatError(f"file is truncated (section {index + 1} of {count} is cut off)")
        tag, flags, length = SECTION.unpack_from(data, pos)
        pos += SECTION.size
        if length > end - pos:
            raise FormatError(f"file is truncated (section {_tag_text(tag)} needs {length:,} "
                              "bytes)")
        out.append((tag, flags, data[pos : pos + length]))
        pos += length
    if pos != end:
        raise FormatError(f"file has {end - pos} unexpected bytes after its last section")
    return out


def unpack(data: bytes,
           weights_size: Callable[[dict[str, Any]], int] | None = None) -> OccFile:
    """Parse and verify a container.

    ``weights_size``, given the header map, returns the byte length the raw weights must
    have (or raises ``FormatError``); the weights frame's declared content size is checked
    against it *before* anything is decompressed, so a small file cannot make the reader
    allocate more than its network needs.

    Raises
    ------
    FormatError
        Not an .occ file, truncated, checksum mismatch, malformed header or weights.
    VersionError
        Written by a newer major version of the format.
    """
    if not data.startswith(MAGIC) and not MAGIC.startswith(data):
        raise FormatError("not an .occ file (wrong magic bytes)")
    if len(data) < PREAMBLE.size:
        raise FormatError("file is truncated (shorter than the .occ preamble)")
    _, major, minor, count = PREAMBLE.unpack_from(data, 0)
    if major > MAJOR:
        raise VersionError(
            f"file uses .occ format {major}.{minor}, newer than this occcodec reads "
            f"({MAJOR}.x): upgrade occcodec"
        )
    if major < 1:
        raise FormatError(f"file has invalid format version {major}.{minor}")
    if len(data) < PREAMBLE.size + TRAILER.size:
        raise FormatError("file is truncated (no checksum)")
    (stored,) = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    if zlib.crc32(data[: -TRAILER.size]) & 0xFFFFFFFF != stored:
        raise FormatError("checksum mismatch: the file is corrupt or truncated")
    result = OccFile({}, b"", (major, minor), total_bytes=len(data))
    result.sections["preamble"] = PREAMBLE.size
    result.sections["trailer"] = TRAILER.size
    head = wgts = None
    for tag, flags, payload in _sections(data, count):
        name = tag.decode("ascii", "replace")
        if tag not in KNOWN_TAGS:
            if flags & FLAG_REQUIRED:
                raise VersionError(
                    f"file needs section {name!r} that this occcodec does not know: upgrade"
                )
            result.skipped.append(name)
            continue
        if name in result.sections:
            raise FormatError(f"file has more than one {name} section")
        result.sections[name] = SECTION.size + len(payload)
        if tag == TAG_HEAD:
            head = payload
        else:
            wgts = payload
    if head is None or wgts is None:
        raise FormatError("file lacks its HEAD or WGTS section")
    result.header = _read_header(head)
    expected = weights_size(result.header) if weights_size is not None else None
    result.weights = _read_weights(wgts, expected)
    return result


def _no_repeated_keys(what: str) -> Any:
    """msgpack ``object_pairs_hook``: a map, refusing a repeated key (spec section 6)."""

    def hook(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, value in pairs:
            if key in out:
                raise FormatError(f"{what} repeats the key {key!r}: the file is damaged")
            out[key] = value
        return out

    return hook


def read_map(payload: bytes, what: str) -> dict[str, Any]:
    """One msgpack map with string keys filling ``payload`` (v1's HEAD, v2's META), with the
    format's rules: no repeated key, nothing after the map. ``what`` names it in messages.

    Raises
    ------
    FormatError
        If it is not such a map.
    """
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=True,
                                object_pairs_hook=_no_repeated_keys(what))
    except FormatError:
        raise
    except msgpack.ExtraData:
        raise FormatError(f"{what} has bytes after its msgpack map: the file is damaged"
                          ) from None
    except Exception as exc:  # msgpack raises several unrelated types
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormatError(f"{what} is not valid msgpack ({why}): the file is damaged") from None
    if not isinstance(value, dict):
        raise FormatError(f"{what} is not a msgpack map: the file is damaged")
    return value


def _read_header(payload: bytes) -> dict[str, Any]:
    return read_map(payload, "header")


def _read_weights(payload: bytes, expected: int | None = None) -> bytes:
    try:
        params = zstandard.get_frame_parameters(payload)
        size = params.content_size
        if size > MAX_SECTION:  # also refuses a frame without a content size
            raise FormatError("weights section declares an implausible size")
        if expected is not None and size != expected:
            raise FormatError(f"weights declare {size:,} bytes, the network needs "
                              f"{expected:,}: the file is damaged")
        limits.check("memory", size, "decompressing the weights")
        # A decompression object, not decompress(): the latter silently ignores bytes after
        # the frame, which the format forbids (exactly one frame fills the section).
        dobj = zstandard.ZstdDecompressor().decompressobj()
        raw = dobj.decompress(payload)
    except zstandard.ZstdError as exc:
        raise FormatError(f"weights are not a valid zstd frame ({exc})") from None
    if not dobj.eof or len(raw) != params.content_size:
        raise FormatError("weights zstd frame is truncated")
    if dobj.unused_data:
        raise FormatError("weights section has bytes after its zstd frame")
    return raw
