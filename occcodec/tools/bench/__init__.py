"""``occcodec bench``: occcodec against the baselines a user would otherwise pick, per shape.

For every shape of a directory, against the same reference grid, each method of
:data:`~occcodec.tools.bench.baselines.BASELINES` (one small class each). The reference grid
of a mesh follows the run's rule (:data:`~occcodec.tools.bench.context.REFERENCE_RULES`): the
encoder's conservative voxelization (``encoder``) or the mesh's winding-number inside at the
voxel centres (``centres``, the default at every resolution); every method's
grid is made the same way (decoded ``.occ`` at the grid, lossless coders of the reference
grid itself, decoded Draco meshes through the same rule):

=======================  ======================================================================
``occcodec``             ``occcodec encode`` with the chosen preset (the ``.occ`` as written)
``NI-arch``              NI's 8x32 architecture (8 hidden ReLU layers of 32, 7,553 parameters)
                         trained under occcodec's budget and sampler, exactly as occcodec's
                         final network but from scratch, in a real ``.occ``. Not the NI
                         paper's training (which fitted a signed distance): it reached 88 %
                         mean IoU on the shared meshes where NI reports 96.8 %
``zstd grid``            the grid bit-packed (8 voxels a byte, C order), one zstd-19 frame;
                         lossless; voxels only, no grid shape or frame
``ctx-grid``             the grid through the lossless context-modelling arithmetic coder
                         ``occcodec.coding.ctxgrid`` (when present), decoded back and checked
``Draco q11/q14``        the mesh's positions and triangles by Draco at 11 / 14 bits, level 7;
                         decoded, made a grid by the reference's rule (meshes only)
``decimate+draco @occ``  quadric decimation (fast-simplification) + Draco: the smallest file
``decimate+draco @99%``  found that reaches occcodec's IoU on the shape / 99 % (meshes only)
``occcodec paper``       ``--preset paper`` (the published budget), with ``--with-paper``
=======================  ======================================================================

Each row gives the bytes of the file written under ``REPORT_DIR`` (so a row can be checked
against ``ls -l``), parameters, voxel IoU/accuracy/precision/recall, the boundary-voxel
Chamfer distances, the surface Chamfer, Hausdorff 95/100 and normal consistency against the
reference mesh (meshes only) and
encode and decode seconds. Encode seconds start from the input file for occcodec and NI-arch
(the encoder's own total), include the voxelization for the grid coders, and count only the
compression (and decimation) of the loaded mesh for Draco. Decode seconds go from the file's
bytes to a voxel grid (occcodec, NI-arch, grid coders) or a mesh (Draco).

Modules: :mod:`.baselines` (the methods), :mod:`.context` (settings, the reference shape, the
row), :mod:`.runner` (:func:`bench`), :mod:`.report` (CSV, Markdown), :mod:`.plots`,
the command line in :mod:`occcodec.cli.bench`. DracoPy, fast-simplification and matplotlib
are optional
(``pip install occcodec[bench]``): without them those rows or the plots are skipped with a
note.
"""

from __future__ import annotations

from occcodec.tools.bench.baselines import (
    BASELINES,
    NI_ARCH,
    Baseline,
    by_name,
    choices,
)
from occcodec.tools.bench.context import CSV_FIELDS, BenchSettings, Ref, make_row
from occcodec.tools.bench.plots import PLOTS, plots
from occcodec.tools.bench.report import csv_text, markdown, size_counts, summary
from occcodec.tools.bench.runner import BenchResult, bench, list_shapes

__all__ = [
    "BASELINES",
    "CSV_FIELDS",
    "NI_ARCH",
    "PLOTS",
    "Baseline",
    "BenchResult",
    "BenchSettings",
    "Ref",
    "bench",
    "by_name",
    "choices",
    "csv_text",
    "list_shapes",
    "make_row",
    "markdown",
    "plots",
    "size_counts",
    "summary",
]
