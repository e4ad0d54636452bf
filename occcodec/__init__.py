"""occcodec: neural shape compression.

A shape (a mesh or a voxel grid) becomes a tiny per-shape MLP that classifies occupancy; its
quantized weights behind a small header are the compressed file.

>>> import occcodec
>>> data = occcodec.encode("part.stl", preset="default", seed=0)   # doctest: +SKIP
>>> shape = occcodec.decode(data)                                    # doctest: +SKIP
>>> grid, mesh = shape.voxels(), shape.mesh()                        # doctest: +SKIP

Importing occcodec is light: TensorFlow is imported only when encoding, trimesh only when a
mesh is read or built.
"""

__version__ = "0.1.0"

from occcodec.api import DecodedShape, decode, encode, encode_result
from occcodec.errors import FormatError, InputError, OccError, OutputError, UsageError, VersionError

__all__ = [
    "DecodedShape",
    "FormatError",
    "InputError",
    "OccError",
    "OutputError",
    "UsageError",
    "VersionError",
    "__version__",
    "decode",
    "encode",
    "encode_result",
]
