"""Fuzzing the reader: only occcodec's own errors come out, and every call is bounded.

Mutants of small valid files (the spec's vectors ``a``, ``b`` and ``c``): header keys
replaced by any msgpack value (booleans where numbers are meant, huge integers, NaN, nested
maps, bytes), deleted, added or repeated; weights of the wrong size; and byte-level flips,
insertions, deletions and truncations, half of them with the CRC recomputed so that the
damage reaches the parsers behind it. Each mutant goes through what ``info`` and ``decode``
do: parse, the info record and table, the encoded grid, a mesh at 16^3.

The assertions: any exception is an :class:`~occcodec.errors.OccError` (a numpy
``RuntimeWarning`` counts as an error: it prints lines before the message); and every mutant
that decodes stayed inside the limits (the checks run before allocating, so the work done
is bounded by them, not by the file). A watchdog (``SIGALRM``) turns a hang into a failure;
it is a hang detector, not a speed test (speed is measured under ``tests/benchmarks``).

The default run tries a few hundred mutants (hypothesis, seconds); ``test_fuzz_100k`` (slow)
tries 100,000 from a seeded generator.
"""

from __future__ import annotations

import contextlib
import copy
import json
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import crafted
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from occcodec import decoder
from occcodec.cli import info as info_cli
from occcodec.errors import OccError
from occcodec.format import container, limits

VECTORS = Path(__file__).resolve().parents[1] / "formats" / "vectors"
FILES = [(VECTORS / name).read_bytes() for name in
         ("a-identity-relu-fp32.occ", "b-pe2-elu-swish-fp16.occ", "c-pe1-int8.occ")]
PARSED = [container.unpack(data) for data in FILES]

#: Small limits: a mutant that passes them decodes in milliseconds.
FUZZ_LIMITS = {"file": 1 << 20, "params": 50_000, "grid": 64, "work": 10**8,
               "memory": 64 << 20}
#: Seconds after which a single mutant counts as hung.
WATCHDOG_S = 30

#: Where a mutation may land: top-level keys and the nested keys a decoder reads.
PATHS: list[tuple[Any, ...]] = [
    ("encoder",), ("grid",), ("grid", 0), ("grid", 2), ("center",), ("center", 1), ("scale",),
    ("fill",), ("arch",), ("arch", "encoding"), ("arch", "encoding", "type"),
    ("arch", "encoding", "levels"), ("arch", "layers"), ("arch", "layers", 0),
    ("arch", "layers", 0, "units"), ("arch", "layers", 0, "activation"), ("arch", "output"),
    ("quant",), ("weights",), ("weights", "codec"), ("weights", "raw_bytes"), ("source",),
    ("source", "sha256"), ("options",), ("metrics",), ("metrics", "iou"), ("new-key",),
]

SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
           | st.binary(max_size=40)
           | st.sampled_from([0, 1, -1, 16, 4096, 4097, 2**31, 1e308, "posenc", "identity",
                              "relu", "fp16", "int8", "solid", "sigmoid", "zstd"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                      max_leaves=12)


class Hung(Exception):
    """A mutant ran past the watchdog."""


@contextlib.contextmanager
def watchdog(seconds: int = WATCHDOG_S) -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Hung(f"a mutant ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def exercise(data: bytes) -> str:
    """What ``info`` and ``decode`` do with ``data``; returns ``"ok"`` or the error's class.

    Raises anything that is not an :class:`OccError` (the failure the fuzzers look for).
    """
    with limits.raised(**FUZZ_LIMITS), watchdog(), warnings.catch_warnings():
        # a numpy RuntimeWarning is several lines on stderr before the one-line error
        warnings.simplefilter("error", RuntimeWarning)
        try:
            coded = decoder.load(data)
            record = decoder.info_record(coded, "mutant.occ")
            info_cli.rows(record)
            json.dumps(info_cli._jsonable(record))
            shape = decoder.decode_shape(coded)
            voxels = shape[0] * shape[1] * shape[2]
            # bounded: the decode that follows does at most this much work
            assert voxels * coded.header.arch.params <= FUZZ_LIMITS["work"]
            assert max(shape) <= FUZZ_LIMITS["grid"]
            decoder.voxels(coded)
            decoder.mesh_arrays(coded, 16)
        except OccError as exc:
            assert "\n" not in str(exc), "an error message must be one line"
            return type(exc).__name__
    return "ok"


def _set(header: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> None:
    node: Any = header
    for step in path[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed the way there
    last = path[-1]
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(last, int)
                                  and last < len(node)):
        if delete and isinstance(node, dict):
            node.pop(last, None)
        elif delete:
            node.pop(last)
        else:
            node[last] = value


def _pack(header: dict[str, Any], weights: bytes, repeat: str | None) -> bytes:
    pairs = list(header.items())
    if repeat is not None and repeat in header:
        pairs.append((repeat, header[repeat]))
    return crafted.assemble(crafted.head_bytes(pairs), weights)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(FILES) - 1),
       edits=st.lists(st.tuples(st.sampled_from(PATHS), VALUES, st.booleans()),
                      min_size=1, max_size=3),
       repeat=st.none() | st.sampled_from(["grid", "arch", "scale", "quant", "metrics"]),
       weights_delta=st.sampled_from([0, 0, 0, -1, 1, -4, 64]))
def test_header_mutants_give_only_occ_errors(which: int, edits: list[tuple[Any, Any, bool]],
                                             repeat: str | None, weights_delta: int) -> None:
    parsed = PARSED[which]
    header = copy.deepcopy(dict(parsed.header))
    for path, value, delete in edits:
        _set(header, path, value, delete)
    w = parsed.weights
    weights = w[:len(w) + weights_delta] if weights_delta < 0 else w + b"\x7f" * weights_delta
    exercise(_pack(header, weights, repeat))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(FILES) - 1), data=st.data(), reseal=st.booleans())
def test_byte_mutants_give_only_occ_errors(which: int, data: st.DataObject,
                                           reseal: bool) -> None:
    buf = bytearray(FILES[which])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = data.draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xC2, 0xC3, 0xDE]))
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[pos:pos + data.draw(st.integers(1, 16))]
        elif op == "truncate":
            del buf[pos:]
    mutant = bytes(buf)
    if reseal and len(mutant) > 4:
        mutant = crafted.reseal(mutant)
    exercise(mutant)


def test_a_mutant_with_nan_logits_gives_an_occ_error() -> None:
    """Found by the byte fuzzer: one bit flipped in vector a's weights (and the checksum
    resealed) gave NaN logits, whose NaN mesh vertices crashed the decoder."""
    buf = bytearray(FILES[0])
    buf[489] ^= 1 << 1
    assert exercise(crafted.reseal(bytes(buf))) in {"ok", "FormatError"}


def test_valid_files_still_decode() -> None:
    """The fuzzers' seeds pass, so a mutant's error is the mutation's doing."""
    assert [exercise(data) for data in FILES] == ["ok", "ok", "ok"]


def _random_mutant(rng: np.random.Generator) -> bytes:
    """One mutant of either kind, from ``rng`` only (reproducible from the seed)."""
    which = int(rng.integers(len(FILES)))
    if rng.random() < 0.5:
        parsed = PARSED[which]
        header = copy.deepcopy(dict(parsed.header))
        pool: list[Any] = [None, True, False, 0, -1, 1, 17, 4096, 4097, 2**40, 2**64 - 1,
                           -(2**63), float("nan"), float("inf"), 1e-300, 0.5, "", "relu",
                           "posenc", "fp16", "int8-layer", "shell", b"\x00" * 32, [],
                           [16, 16, 16], [1e9, 16, 16], [True, 16, 16], {}, {"type": "posenc",
                           "levels": 99}, [{"units": 4096, "activation": "relu"}] * 63]
        for _ in range(int(rng.integers(1, 4))):
            path = PATHS[int(rng.integers(len(PATHS)))]
            # a copy: the pool's own lists and maps must not end up inside each other
            value = copy.deepcopy(pool[int(rng.integers(len(pool)))])
            _set(header, path, value, delete=bool(rng.random() < 0.15))
        repeat = "grid" if rng.random() < 0.05 else None
        return _pack(header, parsed.weights, repeat)
    buf = bytearray(FILES[which])
    for _ in range(int(rng.integers(1, 5))):
        pos = int(rng.integers(len(buf))) if buf else 0
        kind = rng.random()
        if kind < 0.5 and buf:
            buf[pos] ^= 1 << int(rng.integers(8))
        elif kind < 0.7:
            buf[pos:pos] = rng.bytes(int(rng.integers(1, 9)))
        elif kind < 0.9:
            del buf[pos:pos + int(rng.integers(1, 9))]
        else:
            del buf[pos:]
    mutant = bytes(buf)
    return crafted.reseal(mutant) if rng.random() < 0.5 and len(mutant) > 4 else mutant


@pytest.mark.slow
def test_fuzz_100k() -> None:
    rng = np.random.default_rng(8)
    outcomes: dict[str, int] = {}
    for _ in range(100_000):
        result = exercise(_random_mutant(rng))
        outcomes[result] = outcomes.get(result, 0) + 1
    # the mutants reach past the checksum: some decode, many fail in the header
    assert outcomes.get("ok", 0) > 0 and outcomes.get("FormatError", 0) > 0
