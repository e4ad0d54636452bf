"""occcodec: neural shape compression.

A shape (a mesh or a voxel grid) becomes a tiny per-shape MLP that classifies voxel
occupancy; its quantized weights behind a small header are the compressed file.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
