"""The .occ container (occcodec.format.container): round trips, corruption, versions, sections.

Files built "by hand" here follow formats/occ-v1.md with struct and zlib, not the module, so
that a change of layout in the module shows up as a failure against the spec. The property
tests use the hypothesis profile loaded by conftest.py: small by default,
``OCC_HYPOTHESIS_PROFILE=slow`` for a long run.
"""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from occcodec.errors import FormatError, VersionError
from occcodec.format import container

MAGIC = bytes.fromhex("894f43430d0a1a0a")
HEADER = {"encoder": "test", "grid": [4, 5, 6], "nested": {"k": [1, 2.5, None, b"\x00"]}}
WEIGHTS = bytes(range(256)) * 3


# ---------------------------------------------------------------- a writer from the spec

def section(tag: bytes, payload: bytes, flags: int = 1) -> tuple[bytes, int, bytes]:
    return tag, flags, payload


def assemble(sections: list[tuple[bytes, int, bytes]], major: int = 1, minor: int = 0,
             count: int | None = None, junk: bytes = b"") -> bytes:
    """occ-v1.md section 2: preamble, sections, CRC-32 of everything before the trailer."""
    out = MAGIC + struct.pack("<HHI", major, minor, len(sections) if count is None else count)
    for tag, flags, payload in sections:
        out += struct.pack("<4sIQ", tag, flags, len(payload)) + payload
    out += junk
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


def head(header: dict | None = None) -> tuple[bytes, int, bytes]:
    return section(b"HEAD", msgpack.packb(HEADER if header is None else header,
                                          use_bin_type=True))


def wgts(raw: bytes = WEIGHTS) -> tuple[bytes, int, bytes]:
    return section(b"WGTS", zstandard.ZstdCompressor().compress(raw))


def reseal(data: bytes) -> bytes:
    """Recompute the trailer of a modified file."""
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


# ---------------------------------------------------------------- round trip and layout

def test_round_trip() -> None:
    data = container.pack(HEADER, WEIGHTS)
    occ = container.unpack(data)
    assert occ.header == HEADER
    assert occ.weights == WEIGHTS
    assert occ.version == (1, 0)
    assert occ.skipped == []
    assert occ.total_bytes == len(data)
    assert sum(occ.sections.values()) == len(data)


def test_layout_follows_the_spec() -> None:
    data = container.pack(HEADER, WEIGHTS)
    assert data[:8] == MAGIC
    assert struct.unpack_from("<HHI", data, 8) == (1, 0, 2)
    tag, flags, length = struct.unpack_from("<4sIQ", data, 16)
    assert (tag, flags) == (b"HEAD", 1)
    assert msgpack.unpackb(data[32 : 32 + length], raw=False) == HEADER
    pos = 32 + length
    tag, flags, wlen = struct.unpack_from("<4sIQ", data, pos)
    assert (tag, flags) == (b"WGTS", 1)
    frame = data[pos + 16 : pos + 16 + wlen]
    assert zstandard.get_frame_parameters(frame).content_size == len(WEIGHTS)
    assert zstandard.ZstdDecompressor().decompress(frame) == WEIGHTS
    assert pos + 16 + wlen + 4 == len(data)
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_hand_built_file_reads() -> None:
    occ = container.unpack(assemble([head(), wgts()]))
    assert (occ.header, occ.weights) == (HEADER, WEIGHTS)


def test_pack_is_deterministic() -> None:
    assert container.pack(HEADER, WEIGHTS) == container.pack(dict(HEADER), bytes(WEIGHTS))
    # key order is part of the bytes: the writer keeps the map's order
    swapped = dict(reversed(list(HEADER.items())))
    assert container.pack(swapped, WEIGHTS) != container.pack(HEADER, WEIGHTS)


# ---------------------------------------------------------------- properties

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=16) | st.binary(max_size=16))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)
headers = st.dictionaries(st.text(max_size=12), values, max_size=8)
weight_bytes = st.binary(max_size=600)


@given(headers, weight_bytes)
def test_property_round_trip(header: dict, raw: bytes) -> None:
    occ = container.unpack(container.pack(header, raw))
    assert occ.header == header
    assert occ.weights == raw


@given(headers, weight_bytes, st.data())
def test_property_truncation_is_refused(header: dict, raw: bytes, data: st.DataObject) -> None:
    full = container.pack(header, raw)
    cut = data.draw(st.integers(0, len(full) - 1), label="length")
    with pytest.raises(FormatError):
        container.unpack(full[:cut])


@given(headers, weight_bytes, st.data())
def test_property_bit_flip_is_refused(header: dict, raw: bytes, data: st.DataObject) -> None:
    full = bytearray(container.pack(header, raw))
    bit = data.draw(st.integers(0, 8 * len(full) - 1), label="bit")
    full[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FormatError):
        container.unpack(bytes(full))


def test_every_truncation_and_bit_flip_of_a_small_file() -> None:
    """Exhaustive on one file: CRC-32 detects every single-bit error."""
    full = container.pack({"g": [1, 2, 3]}, b"\x01\x02\x03" * 5)
    for cut in range(len(full)):
        with pytest.raises(FormatError):
            container.unpack(full[:cut])
    for bit in range(8 * len(full)):
        flipped = bytearray(full)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FormatError):
            container.unpack(bytes(flipped))


# ---------------------------------------------------------------- preamble and versions

@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + bytes(40),
    b"hello, this is not an occ file at all",
    MAGIC.lower() + bytes(20),
    b"\x00",
])
def test_wrong_magic(data: bytes) -> None:
    with pytest.raises(FormatError, match="not an .occ file"):
        container.unpack(data)


@pytest.mark.parametrize("data", [b"", MAGIC[:3], MAGIC, MAGIC + b"\x01\x00\x00"])
def test_shorter_than_the_preamble(data: bytes) -> None:
    with pytest.raises(FormatError, match="truncated"):
        container.unpack(data)


def test_newer_major_asks_for_an_upgrade() -> None:
    data = assemble([head(), wgts()], major=2)
    with pytest.raises(VersionError, match="upgrade"):
        container.unpack(data)
    # checked before the checksum: a newer major version may move it
    broken = data[:-1] + bytes([data[-1] ^ 0xFF])
    with pytest.raises(VersionError, match="upgrade"):
        container.unpack(broken)


def test_major_zero_is_invalid_not_newer() -> None:
    with pytest.raises(FormatError) as exc:
        container.unpack(assemble([head(), wgts()], major=0))
    assert not isinstance(exc.value, VersionError)


def test_newer_minor_is_read() -> None:
    occ = container.unpack(assemble([head(), wgts()], minor=9))
    assert occ.version == (1, 9)
    assert occ.weights == WEIGHTS


def test_checksum_mismatch_message() -> None:
    data = bytearray(container.pack(HEADER, WEIGHTS))
    data[-1] ^= 0x01
    with pytest.raises(FormatError, match="checksum"):
        container.unpack(bytes(data))


# ---------------------------------------------------------------- sections

def test_unknown_optional_section_is_skipped() -> None:
    note = section(b"NOTE", b"a future minor version's extra", flags=0)
    reserved = section(b"RSVD", b"", flags=0xFFFFFFFE)  # reserved bits set, bit 0 clear
    occ = container.unpack(assemble([head(), note, wgts(), reserved]))
    assert (occ.header, occ.weights) == (HEADER, WEIGHTS)
    assert occ.skipped == ["NOTE", "RSVD"]


def test_unknown_required_section_is_refused() -> None:
    data = assemble([head(), wgts(), section(b"LOSS", b"residual", flags=1)])
    with pytest.raises(VersionError, match="'LOSS'.*upgrade"):
        container.unpack(data)


def test_sections_in_any_order() -> None:
    occ = container.unpack(assemble([wgts(), head()]))
    assert (occ.header, occ.weights) == (HEADER, WEIGHTS)


def test_known_flags_are_not_required() -> None:
    h, w = head(), wgts()
    occ = container.unpack(assemble([(h[0], 0, h[2]), (w[0], 6, w[2])]))
    assert occ.weights == WEIGHTS


@pytest.mark.parametrize("sections", [
    [head()], [wgts()], [], [head(), head(), wgts()], [head(), wgts(), wgts()],
], ids=["no-wgts", "no-head", "empty", "two-heads", "two-wgts"])
def test_head_and_wgts_exactly_once(sections: list) -> None:
    with pytest.raises(FormatError) as exc:
        container.unpack(assemble(sections))
    assert not isinstance(exc.value, VersionError)


def test_bytes_after_the_last_section() -> None:
    with pytest.raises(FormatError, match="unexpected bytes"):
        container.unpack(assemble([head(), wgts()], junk=b"\x00"))


@pytest.mark.parametrize("count", [3, 2**32 - 1])
def test_section_count_larger_than_the_file(count: int) -> None:
    with pytest.raises(FormatError, match="truncated"):
        container.unpack(assemble([head(), wgts()], count=count))


def test_section_length_past_the_end() -> None:
    data = bytearray(assemble([head(), wgts()]))
    struct.pack_into("<Q", data, 24, 2**64 - 1)  # HEAD's payload length
    with pytest.raises(FormatError, match="truncated"):
        container.unpack(reseal(bytes(data)))


# ---------------------------------------------------------------- payloads

@pytest.mark.parametrize("payload", [
    msgpack.packb([1, 2, 3]),                      # not a map
    msgpack.packb({"a": 1}) + b"\xc0",             # bytes after the map
    b"\xc1",                                       # never-used msgpack byte
    msgpack.packb({1: "int key"}),                 # keys must be str
    b"\xa3\xff\xfe\xfd",                           # str that is not UTF-8
    b"",
], ids=["array", "trailing", "c1", "int-key", "bad-utf8", "empty"])
def test_bad_header_payload(payload: bytes) -> None:
    with pytest.raises(FormatError, match="header"):
        container.unpack(assemble([section(b"HEAD", payload), wgts()]))


def _frame(raw: bytes, **kw: bool) -> bytes:
    return zstandard.ZstdCompressor(**kw).compress(raw)


@pytest.mark.parametrize("payload", [
    b"not zstd",
    b"",
    _frame(WEIGHTS)[:-3],                           # cut frame
    _frame(WEIGHTS) + b"\x00",                      # byte after the frame
    _frame(WEIGHTS) * 2,                            # two frames
    _frame(WEIGHTS, write_content_size=False),      # no Frame_Content_Size
], ids=["garbage", "empty", "cut", "trailing", "two-frames", "no-size"])
def test_bad_weights_payload(payload: bytes) -> None:
    with pytest.raises(FormatError, match="weights"):
        container.unpack(assemble([head(), section(b"WGTS", payload)]))


def test_weights_with_zstd_checksum_are_read() -> None:
    payload = _frame(WEIGHTS, write_checksum=True)
    occ = container.unpack(assemble([head(), section(b"WGTS", payload)]))
    assert occ.weights == WEIGHTS
