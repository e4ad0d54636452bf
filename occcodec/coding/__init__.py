"""Entropy coders for voxel grids (numpy and constriction only; no TensorFlow).

:mod:`occcodec.coding.ctxgrid` codes a bool grid losslessly with an adaptive context model.
"""

from __future__ import annotations

from occcodec.coding.ctxgrid import decode_grid, encode_grid

__all__ = ["decode_grid", "encode_grid"]
