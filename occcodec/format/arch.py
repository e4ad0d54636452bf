"""Architectures: the search space, their string form, and their parameter counts.

An architecture is an optional input encoding followed by hidden dense layers (1..6 in the
search, up to 16 through ``--arch``) and one
sigmoid output unit. It is written as a comma-separated string, e.g. ``"32:elu,48:relu"`` or
``"pe4,24:swish,24:swish"`` (``peL`` = positional encoding with L frequency levels). The
container stores the same information by string ids (see ``formats/occ-v1.md``), never by
position in a table, so adding choices never changes how old files decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from occcodec.errors import UsageError

#: Hidden widths of the paper's search space (METHOD.md section 3).
WIDTHS: tuple[int, ...] = (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64)
#: Hidden activations, by the ids written in the file.
ACTIVATIONS: tuple[str, ...] = ("relu", "elu", "swish")
MAX_HIDDEN = 6
#: Depth a user may ask for with ``--arch`` (the NI baseline has 8 hidden layers).
MAX_USER_HIDDEN = 16
#: Largest positional-encoding level count a file may name.
MAX_PE_LEVELS = 12
#: The NI baseline (8 hidden layers of 32) and the largest network of the paper's space:
#: the constants of the paper's reward.
NI_PARAMS = 7553
LARGEST_PARAMS = 21121


@dataclass(frozen=True)
class Layer:
    """One hidden dense layer."""

    units: int
    activation: str


@dataclass(frozen=True)
class Arch:
    """A network: input encoding, hidden layers, one sigmoid output unit.

    ``pe_levels`` = 0 means the raw normalised (x, y, z) is the input.
    """

    layers: tuple[Layer, ...]
    pe_levels: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def input_dim(self) -> int:
        """Width of the network input: 3 coordinates plus 6 features per PE level."""
        return 3 + 6 * self.pe_levels

    def layer_dims(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every dense layer, the output layer last."""
        dims = []
        fan_in = self.input_dim
        for layer in self.layers:
            dims.append((fan_in, layer.units))
            fan_in = layer.units
        dims.append((fan_in, 1))
        return dims

    @property
    def params(self) -> int:
        """Number of trainable parameters (kernels and biases; the encoding has none)."""
        return sum(i * o + o for i, o in self.layer_dims())

    def __str__(self) -> str:
        tokens = [f"pe{self.pe_levels}"] if self.pe_levels else []
        tokens += [f"{layer.units}:{layer.activation}" for layer in self.layers]
        return ",".join(tokens)

    def to_header(self) -> dict[str, object]:
        """The architecture as written in the container header."""
        encoding: dict[str, object] = {"type": "identity"}
        if self.pe_levels:
            encoding = {"type": "posenc", "levels": self.pe_levels}
        return {
            "encoding": encoding,
            "layers": [{"units": x.units, "activation": x.activation} for x in self.layers],
            "output": "sigmoid",
        }

    @classmethod
    def from_header(cls, obj: object) -> Arch:
        """Inverse of :meth:`to_header`; raises ValueError on anything malformed."""
        if not isinstance(obj, dict):
            raise ValueError("arch is not a map")
        enc = obj.get("encoding", {"type": "identity"})
        if not isinstance(enc, dict):
            raise ValueError("arch.encoding is not a map")
        if enc.get("type") == "identity":
            levels = 0
        elif enc.get("type") == "posenc":
            given = enc.get("levels")
            # type() and not isinstance(): msgpack true is a bool, and bool is an int in Python
            if type(given) is not int or not 1 <= given <= MAX_PE_LEVELS:
                raise ValueError(f"posenc levels {given!r} not in 1..{MAX_PE_LEVELS}")
            levels = given
        else:
            raise ValueError(f"unknown input encoding {enc.get('type')!r}")
        if obj.get("output", "sigmoid") != "sigmoid":
            raise ValueError(f"unknown output {obj.get('output')!r}")
        raw = obj.get("layers")
        if not isinstance(raw, list) or not raw:
            raise ValueError("arch.layers must be a non-empty list")
        layers = []
        for item in raw:
            if not isinstance(item, dict):
                raise ValueError("arch layer is not a map")
            units, act = item.get("units"), item.get("activation")
            if type(units) is not int or not 1 <= units <= 4096:
                raise ValueError(f"layer units {units!r} out of range")
            if type(act) is not str or act not in ACTIVATIONS:
                raise ValueError(f"unknown activation {act!r}")
            layers.append(Layer(units, act))
        return cls(tuple(layers), levels)


def parse_arch(text: str) -> Arch:
    """Parse ``"pe4,32:elu,48:relu"``.

    Widths are free (1..4096) so that a user may train any network; the search draws from
    :data:`WIDTHS` only.

    Raises
    ------
    UsageError
        With the offending token and the expected form.
    """
    form = 'expected e.g. "32:elu,48:relu,24:swish" or "pe4,24:swish,24:swish"'
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    levels = 0
    if tokens and tokens[0].lower().startswith("pe"):
        try:
            levels = int(tokens[0][2:])
        except ValueError:
            raise UsageError(f"bad encoding token {tokens[0]!r}: {form}") from None
        if not 1 <= levels <= MAX_PE_LEVELS:
            raise UsageError(f"positional encoding levels must be 1..{MAX_PE_LEVELS}: {form}")
        tokens = tokens[1:]
    if not 1 <= len(tokens) <= MAX_USER_HIDDEN:
        raise UsageError(f"an architecture has 1 to {MAX_USER_HIDDEN} hidden layers: {form}")
    layers = []
    for tok in tokens:
        units_s, _, act = tok.partition(":")
        act = act.lower()
        try:
            units = int(units_s)
        except ValueError:
            raise UsageError(f"bad layer {tok!r}: {form}") from None
        if not 1 <= units <= 4096 or act not in ACTIVATIONS:
            raise UsageError(f"bad layer {tok!r} (activations: {', '.join(ACTIVATIONS)}): {form}")
        layers.append(Layer(units, act))
    return Arch(tuple(layers), levels)
