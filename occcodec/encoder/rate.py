"""Rate control: which network at which bit depths becomes the file.

A low-bit file's size is known before anything is trained: ``lowbit.payload_bytes(arch,
bits)`` plus the container's overhead. So the encoder turns "the smallest file with IoU >= T"
(``--target-iou``) and "the best IoU in at most N bytes" (``--max-bytes``) into a walk over
*plans* (an architecture and its bits per layer, with the predicted file size), where each
plan is scored by what it really gives: a short quantization-aware fine-tune at its bits
(:func:`occcodec.encoder.qat.finetune`) measured by the decoder's own numpy code on the
encoded grid.

No TensorFlow here: the CLI and :mod:`occcodec.encoder.presets` import the quantization
choices, and the selection logic is tested with hand-made scores. The pipeline supplies
the callables that train and measure.

Bit allocations: the layer fed by the input (coordinates or positional encoding) gets its own
depth, all later layers one shared depth. ``tests/benchmarks/results/lowbit-sweep`` measured
(nut, spot at 128^3): QAT at 8 bits first + 4 after kept 99.17 % / 98.76 % IoU at 41-44 % of
fp16's bytes, 8+3 lost another 0.1-0.2 point for 8 % fewer bytes, uniform 4 bits lost 1.6-4.5
points; the greedy per-layer allocation measured without retraining picked larger files at
lower IoU (its docstring). So the encoder searches the small list :data:`BIT_PAIRS` of (first,
rest) pairs, each scored WITH a QAT run, by a bisection over the plans sorted by size
(IoU grows with bits): 2 or 3 QAT runs per network instead of 5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from occcodec.errors import UsageError
from occcodec.format.arch import Arch

#: (bits of the first layer, bits of every later layer) the ``auto`` quantization chooses
#: from. The first layer reads the positional encoding and loses most from few bits (the
#: sweep); 6+4 is the one pair that spends fewer bits there. 8+8 is the last step before
#: a larger network: at 512^3, rotor_small's pe4,64:relu,16:elu lost 0.7 point at 8+6
#: (99.46 % float, 98.76 %) and reached 99.00 % at 8+8 in 3,235 bytes, where the next
#: network took 7,085 bytes; the bisection still makes at most 3 QAT runs per network.
BIT_PAIRS: tuple[tuple[int, int], ...] = ((8, 3), (6, 4), (8, 4), (8, 5), (8, 6), (8, 8))
#: ``--quant`` values that make a low-bit (v2) file: ``auto`` (the encoder picks from
#: :data:`BIT_PAIRS`) or ``N``: N-bit weights after an 8-bit first layer (8: all 8 bits).
LOWBIT_QUANTS: tuple[str, ...] = ("auto", "3", "4", "5", "6", "7", "8")
#: The pair the search's size term prices an ``auto`` network at (the sweep's best trade).
SEARCH_PAIR = (8, 4)

#: Predicted file bytes of an architecture at given bits per layer.
SizeFn = Callable[[Arch, tuple[int, ...]], int]


def is_lowbit(quant: str) -> bool:
    """Whether ``--quant quant`` makes a low-bit file."""
    return quant in LOWBIT_QUANTS


Pairs = tuple[tuple[int, int], ...]


def bit_pairs(quant: str, auto: Pairs = ()) -> Pairs:
    """The (first, rest) pairs a low-bit ``--quant`` value allows (``auto``: the preset's
    pairs for ``--quant auto``, all of :data:`BIT_PAIRS` when empty).

    Raises
    ------
    UsageError
        If ``quant`` is not a low-bit choice.
    """
    if quant == "auto":
        return auto or BIT_PAIRS
    if quant in LOWBIT_QUANTS:
        return ((8, int(quant)),)
    raise UsageError(f"--quant {quant!r} is not a low-bit choice: use {', '.join(LOWBIT_QUANTS)}")


def search_pair(quant: str, auto: Pairs = ()) -> tuple[int, int]:
    """The pair the search prices networks at under ``quant`` (low-bit only)."""
    pairs = bit_pairs(quant, auto)
    return SEARCH_PAIR if SEARCH_PAIR in pairs else pairs[0]


def layer_bits(arch: Arch, pair: tuple[int, int]) -> tuple[int, ...]:
    """Bits per dense layer of ``arch`` (output layer included) for a (first, rest) pair."""
    first, rest = pair
    return (first,) + (rest,) * (len(arch.layer_dims()) - 1)


@dataclass(frozen=True)
class Plan:
    """A network at given bits per layer, with the size of its file predicted exactly."""

    arch: Arch
    bits: tuple[int, ...]
    nbytes: int


@dataclass
class Trial:
    """A plan trained and measured: the IoU on the encoded grid of what a decoder gets."""

    plan: Plan
    iou: float
    payload: bytes = b""
    metrics: dict[str, object] = field(default_factory=dict)
    #: False when the decoded shape has spurious parts (``Preset.clean_components``): such a
    #: trial never counts as reaching the target. Counted only for trials whose IoU reaches
    #: the target (``meshfit.mesh_metrics``): one that misses it stays True, unmeasured.
    clean: bool = True

    def passes(self, target: float) -> bool:
        """Whether this trial reaches ``target`` (and is clean)."""
        return self.clean and self.iou >= target


def plans(arch: Arch, pairs: Sequence[tuple[int, int]], size: SizeFn,
          max_bytes: int | None = None) -> list[Plan]:
    """``arch`` at each pair, smallest file first, duplicates (same bits) once, and only those
    within ``max_bytes`` when given. Ties in size keep the pair listed first."""
    seen: set[tuple[int, ...]] = set()
    out: list[Plan] = []
    for pair in pairs:
        bits = layer_bits(arch, pair)
        if bits in seen:
            continue
        seen.add(bits)
        n = size(arch, bits)
        if max_bytes is None or n <= max_bytes:
            out.append(Plan(arch, bits, n))
    return sorted(out, key=lambda p: p.nbytes)


def smallest_passing(ladder: Sequence[Plan], evaluate: Callable[[Plan], Trial],
                     target: float) -> tuple[Trial | None, list[Trial]]:
    """Bisect ``ladder`` (sorted by size) for the smallest plan whose IoU reaches ``target``.

    IoU is taken to grow with the bytes spent on one network (more bits per weight), so
    ``ceil(log2(len + 1))`` evaluations find it: 3 for the 5 pairs of ``auto``. Returns the
    smallest passing trial (None if none passed) and every trial, in evaluation order.
    """
    lo, hi = 0, len(ladder) - 1
    passing: Trial | None = None
    trials: list[Trial] = []
    while lo <= hi:
        mid = (lo + hi) // 2
        t = evaluate(ladder[mid])
        trials.append(t)
        if t.passes(target):
            passing, hi = t, mid - 1
        else:
            lo = mid + 1
    return passing, trials


@dataclass
class Outcome:
    """What rate control chose: the trial to write, whether the request was met, why not."""

    chosen: Trial
    reached: bool
    trials: list[Trial]
    note: str = ""
    #: The note again for the chosen plan measured at ``iou`` (a trial far under the target
    #: holds an estimate: ``meshfit.mesh_metrics``' ``screen``); None when the target was met.
    note_at: Callable[[float], str] | None = None


class NoPlanFits(UsageError):
    """No plan of any network fits ``--max-bytes`` (raised before anything is trained)."""


class GaveUp(Exception):
    """Rate control trained no plan: every network's float IoU was under the caller's
    ``fallback_below`` (the caller writes its fallback, the lossless grid, instead).

    ``ceilings`` holds each network tried and its float IoU, in order.
    """

    def __init__(self, ceilings: Sequence[tuple[Arch, float]]) -> None:
        self.ceilings = list(ceilings)
        self.best = max(c for _, c in self.ceilings)  # the highest float IoU of them
        super().__init__(f"no network came within reach of the target (best float IoU "
                         f"{self.best * 100:.2f} %)")


def closest(trials: Sequence[Trial]) -> Trial:
    """The best of trials that all miss: a clean one first, then the highest IoU, then the
    fewest bytes."""
    return max(trials, key=lambda t: (t.clean, t.iou, -t.plan.nbytes))


def control(archs: Sequence[Arch], pairs: Sequence[tuple[int, int]], size: SizeFn,
            evaluate: Callable[[Plan], Trial], *, target: float | None,
            max_bytes: int | None = None,
            ceiling: Callable[[Arch], float] | None = None,
            shrink: Callable[[Arch, float], Arch | None] | None = None,
            shrink_room: float = 0.0,
            first: Arch | None = None,
            fallback_below: float | None = None,
            abandon_below: float | None = None,
            advice: str = "a larger --arch or --preset paper") -> Outcome:
    """Walk ``archs`` in order (the search's pick first) and return the file to write.

    With ``target``: for each network, the smallest plan (within ``max_bytes``) that reaches
    it, by :func:`smallest_passing`; the first network that reaches it wins (a later one is
    only tried when an earlier one fails). ``ceiling(arch)``, the IoU before quantization,
    saves the QAT runs of a network that cannot reach the target: only its largest plan is
    trained, as a candidate for the closest result. ``shrink(arch, ceiling)``, when given,
    may name a smaller network to try first when ``arch`` clears the target with room to
    spare (its ceiling far above it): when that network's ceiling is at least ``target +
    shrink_room`` (room for quantization) and one of its plans reaches the target, its file
    is written; if not, ``arch``'s plans are tried as usual. ``first``, when given, is such
    a smaller network tried before any of ``archs`` under the same condition (its float fit
    is cheaper than the pick's: when it passes, the pick is never trained). Without
    ``target``: the largest plan within ``max_bytes`` of the first network that has one
    (more bits, more IoU).

    ``fallback_below`` (with ``target`` and ``ceiling``): the caller replaces any file whose
    IoU is under this by a fallback (the lossless grid), so a network whose ceiling is under
    it gets no QAT run at all (its closest plan could never be written); with
    ``abandon_below`` too, a network whose ceiling is under that ends the walk (no later
    network is fitted; ``first`` counts too). When no plan was trained for that reason,
    :class:`GaveUp` is raised.

    Raises
    ------
    NoPlanFits
        When no plan of any network fits ``max_bytes`` (the message gives the smallest size
        that would fit: a file over ``--max-bytes`` is never written).
    GaveUp
        When every network's ceiling was under ``fallback_below`` (none was trained).
    """
    trials: list[Trial] = []
    smallest: Plan | None = None

    def ladder_of(arch: Arch) -> list[Plan]:
        nonlocal smallest
        every = plans(arch, pairs, size)
        if every and (smallest is None or every[0].nbytes < smallest.nbytes):
            smallest = every[0]
        return [p for p in every if max_bytes is None or p.nbytes <= max_bytes]

    attempted: set[str] = set()
    hopeless: list[tuple[Arch, float]] = []

    def attempt(small: Arch | None) -> Trial | None:
        """The smaller network's smallest passing plan, if it has room for quantization
        (each network at most once)."""
        assert target is not None and ceiling is not None
        if small is None or str(small) in attempted:
            return None
        attempted.add(str(small))
        small_ladder = ladder_of(small)
        if not small_ladder or ceiling(small) < target + shrink_room:
            return None
        passing, tried = smallest_passing(small_ladder, evaluate, target)
        trials.extend(tried)
        return passing

    if first is not None and target is not None and ceiling is not None:
        passing = attempt(first)
        if passing is not None:
            return Outcome(passing, True, trials)
        if (fallback_below is not None and abandon_below is not None and ladder_of(first)
                and ceiling(first) < abandon_below):
            # the smaller network is as accurate in the search (``first``'s condition)
            raise GaveUp([(first, ceiling(first))])
    for arch in archs:
        ladder = ladder_of(arch)
        if not ladder:
            continue
        if target is None:
            t = evaluate(ladder[-1])
            return Outcome(t, True, [t])
        if ceiling is not None:
            top = ceiling(arch)
            if top < target:
                if fallback_below is not None and top < fallback_below:
                    hopeless.append((arch, top))
                    if abandon_below is not None and top < abandon_below:
                        break
                    continue
                trials.append(evaluate(ladder[-1]))
                continue
            passing = attempt(shrink(arch, top) if shrink is not None else None)
            if passing is not None:
                return Outcome(passing, True, trials)
        passing, tried = smallest_passing(ladder, evaluate, target)
        trials += tried
        if passing is not None:
            return Outcome(passing, True, trials)
    if not trials and hopeless:
        raise GaveUp(hopeless)
    if not trials:
        need = f"{smallest.nbytes:,}" if smallest else "more"
        raise NoPlanFits(f"no network fits --max-bytes {max_bytes:,}: the smallest file "
                         f"would be {need} bytes; raise --max-bytes or give a smaller --arch")
    best = closest(trials)
    assert target is not None  # without a target the first fitting plan returned above
    budget = f" within {max_bytes:,} bytes" if max_bytes is not None else ""
    more = ", a higher --max-bytes" if max_bytes is not None else ""

    def note_at(iou: float) -> str:
        return (f"target IoU {target * 100:.2f} % not reached{budget}: kept the closest, "
                f"{iou * 100:.2f} % in {best.plan.nbytes:,} bytes; try a lower --target-iou"
                f"{more} or {advice}")

    return Outcome(best, False, trials, note_at(best.iou), note_at)
