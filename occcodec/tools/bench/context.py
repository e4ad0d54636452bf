"""What every baseline gets: the run's settings, the shape as the encoder saw it, a writer.

A baseline's row is one dict with the keys of :data:`CSV_FIELDS`; :func:`make_row` fills the
fidelity figures from :func:`occcodec.tools.evaluate.compare`, so every method is measured
by the same code against the same reference grid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.encoder.pipeline import (
    EncodeOptions,  # imports TensorFlow only inside encode()
)

__all__ = [
    "CSV_FIELDS",
    "REFERENCE_RULES",
    "RULE_TEXT",
    "BenchSettings",
    "Context",
    "Ref",
    "make_row",
]

CSV_FIELDS: tuple[str, ...] = (
    "shape", "method", "file", "bytes", "params", "iou", "accuracy", "precision", "recall",
    "voxel_chamfer", "voxel_chamfer_vox", "voxel_hausdorff_vox", "surface_chamfer",
    "surface_chamfer_vox", "surface_hausdorff_vox", "surface_hausdorff", "surface_hausdorff95",
    "surface_hausdorff95_vox", "normal_consistency", "encode_s", "decode_s", "input_bytes",
    "arch", "target_iou", "target_reached", "grid", "reference_rule", "note",
)

#: Reference rules: ``encoder`` (the encoder's conservative voxelization, the grid it
#: trained on) or ``centres`` (the mesh's winding-number inside at the voxel centres,
#: :func:`occcodec.shapes.inside.centre_grid`); ``auto`` is ``centres`` at every
#: resolution, the encoder's truth for mesh inputs (README "Which rule every figure uses");
#: ``encoder`` compares with older reports.
REFERENCE_RULES: tuple[str, ...] = ("auto", "encoder", "centres")
RULE_TEXT = {
    "encoder": "the encoder's voxelization of the input (conservative: every voxel the "
               "surface passes through, plus the voxels the ray vote puts inside)",
    "centres": "the input mesh's inside at the voxel centres (|winding number| > 1/2; in "
               "shell mode, within half a voxel of the surface)",
}


@dataclass
class BenchSettings:
    """What a bench run does: occcodec's encode options plus the bench's own switches.

    ``baselines`` holds CLI names (:func:`occcodec.tools.bench.baselines.choices`) to run;
    ``None`` runs every baseline that applies.
    """

    encode: EncodeOptions = dataclasses.field(default_factory=EncodeOptions)
    with_paper: bool = False
    force: bool = False
    quiet: bool = False
    surface_points: int = 100_000
    baselines: tuple[str, ...] | None = None
    reference: str = "auto"
    #: Extra occcodec rows at these ``--target-iou`` values (``bench --targets``).
    targets: tuple[float, ...] = ()

    def rule(self) -> str:
        """The reference rule of this run: ``encoder`` or ``centres`` (see
        :data:`REFERENCE_RULES`)."""
        return "centres" if self.reference == "auto" else self.reference

    def encode_options(self, preset: str | None = None) -> EncodeOptions:
        """Encode options for occcodec; for ``preset="paper"`` without ``--arch`` and
        ``--max-params``, which would change the published search."""
        if preset == "paper":
            return dataclasses.replace(self.encode, preset="paper", arch=None, max_params=None)
        return dataclasses.replace(self.encode, preset=preset or self.encode.preset)


@dataclass
class Ref:
    """One input shape as the encoder voxelizes it: the reference of every method."""

    name: str  # base name of the files written for this shape
    path: Path
    grid: np.ndarray
    mesh: Any  # world-space trimesh, or None for a voxel input
    center: tuple[float, float, float]
    scale: float
    fill: str
    voxelize_s: float
    #: Work that several baselines of one shape share (e.g. the decimate+draco search).
    cache: dict[str, Any] = field(default_factory=dict)
    #: How ``grid`` and every method's grid were made from a mesh: ``encoder`` or
    #: ``centres`` (:data:`REFERENCE_RULES`).
    rule: str = "encoder"

    def mesh_grid(self, mesh: Any, shape: tuple[int, int, int] | None = None) -> np.ndarray:
        """A method's decoded mesh as a grid in this reference's frame, by the same rule
        (on a grid of ``shape``, default the reference's own).

        Raises
        ------
        InputError
            If the mesh cannot be used (no faces, bad indices).
        """
        if self.rule == "centres":
            from occcodec.shapes.inside import centre_grid

            fill = "shell" if self.fill == "shell" else "solid"
            dims = shape or tuple(int(n) for n in self.grid.shape)
            return centre_grid(mesh, self.center, self.scale, dims, fill=fill)  # type: ignore[arg-type]
        from occcodec.shapes.voxelize import voxelize_in_frame

        return voxelize_in_frame(mesh, self.center, self.scale, self.grid.shape[0], self.fill)


@dataclass
class Context:
    """The report directory and settings, with the two things every baseline does."""

    report: Path
    settings: BenchSettings

    def write(self, sub: str, name: str, data: bytes) -> tuple[Path, str]:
        """Write ``data`` atomically to ``REPORT/sub/name``; return the path and its
        report-relative POSIX name (the ``file`` column).

        Raises
        ------
        OutputError
            If the file exists and the run was not forced.
        """
        from occcodec.fsutil import atomic_write_bytes

        path = self.report / sub / name
        path.parent.mkdir(exist_ok=True)
        atomic_write_bytes(path, data, force=self.settings.force)
        return path, path.relative_to(self.report).as_posix()

    def compare(self, ref: Ref, grid: np.ndarray, mesh: Any) -> dict[str, Any]:
        """Every fidelity figure of ``grid`` (and ``mesh`` for a mesh input) against ``ref``."""
        from occcodec.tools.evaluate import compare

        return compare(ref.grid, grid, ref_mesh=ref.mesh,
                       pred_mesh=mesh if ref.mesh is not None else None, scale=ref.scale,
                       n_points=self.settings.surface_points, seed=self.settings.encode.seed)


def make_row(ref: Ref, method: str, figures: dict[str, Any] | None,
             **values: Any) -> dict[str, Any]:
    """A result row: the shape, the method, the figures of ``compare`` and ``values``."""
    row: dict[str, Any] = dict.fromkeys(CSV_FIELDS)
    row.update(shape=ref.path.name, method=method, input_bytes=ref.path.stat().st_size, note="")
    if figures is not None:
        v, vc, s = figures["voxel"], figures["voxel_chamfer"], figures["surface"]
        row.update(iou=v["iou"], accuracy=v["accuracy"], precision=v["precision"],
                   recall=v["recall"], voxel_chamfer=vc["chamfer"],
                   voxel_chamfer_vox=vc["chamfer_voxels"],
                   voxel_hausdorff_vox=vc["hausdorff_voxels"])
        if s is not None:
            row.update(surface_chamfer=s["chamfer"], surface_chamfer_vox=s["chamfer_voxels"],
                       surface_hausdorff_vox=s["hausdorff_voxels"],
                       surface_hausdorff=s["hausdorff"], surface_hausdorff95=s["hausdorff_95"],
                       surface_hausdorff95_vox=s["hausdorff_95_voxels"],
                       normal_consistency=s["normal_consistency"])
    row.update(grid="x".join(str(n) for n in np.shape(ref.grid)), reference_rule=ref.rule)
    row.update(values)
    return row
