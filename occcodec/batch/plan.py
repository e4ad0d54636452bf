"""The batch's bookkeeping: which files, which output names, what is up to date, the manifest.

No TensorFlow and no worker here: :mod:`occcodec.batch.run` plans with these functions, then
runs the shapes through :mod:`occcodec.batch.workers`.

Output names: a supported input ``a/b/c.obj`` becomes ``a/b/c.occ``; when two inputs of a
folder would get the same name (``c.obj`` and ``c.stl``) both keep their extension instead
(``c.obj.occ``, ``c.stl.occ``), so a name never depends on which came first.

The manifest (``OUT_DIR/manifest.jsonl``) holds one JSON object per input, sorted by path,
with the keys :data:`RECORD_KEYS`: among them the input's ``sha256``, the encode
``options`` and the ``.occ``'s own ``occ_sha256``, which is all that resuming needs when a
file is stripped of its metadata (format v2 without META). It is rewritten atomically
(temporary file, then rename)
after every shape, so whatever stops a run, it is a whole snapshot.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from occcodec.errors import OccError

MANIFEST = "manifest.jsonl"
RECORD_KEYS = ("path", "output", "status", "error", "note", "input_bytes", "occ_bytes", "ratio",
               "params", "iou", "arch", "seconds", "device", "sha256", "options", "occ_sha256")


@dataclass
class Item:
    """One file found under IN_DIR."""

    rel: str                      # POSIX path relative to IN_DIR
    src: Path
    size: int
    dst: Path | None = None       # None: not a supported input
    out_rel: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ plan


def walk(in_dir: Path, exclude: Path | None = None) -> Iterator[Path]:
    """Files under ``in_dir`` in sorted order, without hidden entries or ``exclude``'s tree."""
    skip = exclude.resolve() if exclude else None
    for root, dirs, files in os.walk(in_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip is None or Path(root, d).resolve() != skip))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root, name)


def output_names(rels: list[str], suffix: str) -> dict[str, str]:
    """Map input paths to output paths with ``suffix``: ``a/c.obj`` -> ``a/c.occ``.

    Inputs whose outputs would clash (compared without case, for case-insensitive disks)
    keep their extension: ``a/c.obj.occ``. Repeated until nothing clashes, so the result is
    the same whatever the order; names that still clash (``C.obj``, ``c.obj``) map to the
    same output, which the caller reports.
    """
    full: set[str] = set()
    while True:
        names = {r: (r + suffix if r in full else str(PurePosixPath(r).with_suffix(suffix)))
                 for r in rels}
        groups: dict[str, list[str]] = defaultdict(list)
        for r, n in names.items():
            groups[n.lower()].append(r)
        clash = {r for g in groups.values() if len(g) > 1 for r in g} - full
        if not clash:
            return names
        full |= clash


def plan(in_dir: Path, out_dir: Path, extensions: frozenset[str], suffix: str
         ) -> tuple[list[Item], list[Item]]:
    """(supported inputs with their outputs, other files), both sorted by path."""
    inside = out_dir.resolve() != in_dir.resolve() and in_dir.resolve() in out_dir.resolve().parents
    manifest = (out_dir / MANIFEST).resolve()
    found: list[Item] = []
    others: list[Item] = []
    for path in walk(in_dir, out_dir if inside else None):
        if path.resolve() == manifest:
            continue
        rel = path.relative_to(in_dir).as_posix()
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        item = Item(rel, path, size)
        (found if path.suffix.lower() in extensions else others).append(item)
    names = output_names([it.rel for it in found], suffix)
    for it in found:
        it.out_rel = names[it.rel]
        it.dst = out_dir / it.out_rel
    return sorted(found, key=lambda i: i.rel), sorted(others, key=lambda i: i.rel)


def new_record(item: Item, status: str, **values: Any) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    rec.update(path=item.rel, output=item.out_rel, status=status, input_bytes=item.size)
    rec.update(values)
    if rec["occ_bytes"] and rec["input_bytes"]:
        rec["ratio"] = round(rec["input_bytes"] / rec["occ_bytes"], 2)
    return rec


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Records of an earlier run by input path; unreadable lines are ignored."""
    out: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict) and isinstance(rec.get("path"), str):
                    out[rec["path"]] = rec
    return out


def write_manifest(path: Path, records: dict[str, dict[str, Any]]) -> None:
    """Rewrite the manifest atomically: readers see the old or the new one, never half."""
    from occcodec.fsutil import atomic_write_bytes

    text = "".join(json.dumps(records[k], sort_keys=False) + "\n" for k in sorted(records))
    atomic_write_bytes(path, text.encode("utf-8"), force=True)


def remove_temporaries(dst: Path) -> None:
    """Delete what an interrupted atomic write of ``dst`` may have left (``.NAME.*.tmp.EXT``)."""
    with contextlib.suppress(OSError):
        for tmp in dst.parent.glob(f".{dst.name}.*.tmp{dst.suffix}"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def check_existing(item: Item, sha: bytes, options: dict[str, Any],
                   recorded: dict[str, Any] | None = None
                   ) -> tuple[dict[str, Any] | None, str | None]:
    """(what an up-to-date ``.occ`` tells, None) or (None, why it must be re-encoded).

    A file is up to date when it parses and was made from input ``sha`` with ``options``.
    The file says so itself (v1, or v2 with META); a stripped v2 file (``--strip``: no
    META) is up to date when ``recorded``, the manifest's record of this input, names the
    same output with the same input hash and options and the file's own SHA-256
    (``occ_sha256``), so that a stripped file replaced or edited since is re-encoded.
    """
    import hashlib

    from occcodec import decoder

    assert item.dst is not None
    if not item.dst.exists():
        return None, None
    try:
        data = item.dst.read_bytes()
        coded = decoder.load(data)
    except (OccError, OSError) as exc:
        return None, f"replaced an unreadable .occ ({exc})"
    raw = coded.header.raw
    occ_sha = hashlib.sha256(data).hexdigest()
    if "source" in raw or "options" in raw:
        source = raw.get("source")
        if not isinstance(source, dict) or source.get("sha256") != sha:
            return None, "replaced: the input changed"
        if raw.get("options") != options:
            return None, "replaced: the encode options changed"
        metrics = coded.header.metrics
    else:  # stripped: the manifest holds what the file lacks
        rec = recorded or {}
        if (rec.get("output") != item.out_rel or rec.get("status") == "failed"
                or rec.get("occ_sha256") != occ_sha):
            return None, "replaced: a stripped .occ that the manifest does not record"
        if rec.get("sha256") != sha.hex():
            return None, "replaced: the input changed"
        if rec.get("options") != options:
            return None, "replaced: the encode options changed"
        metrics = {"iou": rec.get("iou")}
    return {**metrics, "params": coded.params, "arch": coded.label,
            "occ_bytes": coded.file.total_bytes, "occ_sha256": occ_sha}, None


def classify(found: list[Item], previous: dict[str, dict[str, Any]], options: dict[str, Any],
             force: bool) -> tuple[dict[str, dict[str, Any]], list[Item]]:
    """Records of the inputs settled before any encoding (up to date, or failed at once),
    and the inputs to encode (each with its ``record`` seed: sha256 and a note)."""
    from occcodec.shapes.inputs import sha256_file  # cheap: trimesh is imported on first use

    records: dict[str, dict[str, Any]] = {}
    todo: list[Item] = []
    outputs: dict[str, str] = {}
    for it in found:
        assert it.dst is not None and it.out_rel is not None
        remove_temporaries(it.dst)
        key = it.out_rel.lower()
        if key in outputs:
            records[it.rel] = new_record(it, "failed", error=f"its output {it.out_rel} is also "
                                         f"the output of {outputs[key]}: rename one")
            continue
        outputs[key] = it.rel
        if it.dst.is_dir():
            records[it.rel] = new_record(it, "failed", error=f"its output {it.out_rel} is a "
                                         "directory: move it away")
            continue
        try:
            sha = sha256_file(it.src)
        except OSError as exc:
            records[it.rel] = new_record(it, "failed", error=f"cannot read the input: "
                                         f"{exc.strerror or exc}")
            continue
        have, note = (None, None) if force else check_existing(
            it, bytes.fromhex(sha), options, previous.get(it.rel))
        if have is None:
            it.record = {"sha256": sha, "note": note, "options": options}
            todo.append(it)
            continue
        old = previous.get(it.rel, {})  # keep when and where it was encoded
        carry = {k: old.get(k) for k in ("seconds", "device")
                 if old.get("output") == it.out_rel and old.get("status") != "failed"}
        records[it.rel] = new_record(it, "skipped", note="up to date", sha256=sha,
                                     occ_bytes=have["occ_bytes"], params=have.get("params"),
                                     iou=have.get("iou"), arch=have["arch"], options=options,
                                     occ_sha256=have["occ_sha256"], **carry)
    return records, todo
