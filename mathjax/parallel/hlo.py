"""What a compiled step sends: collectives read from the optimized HLO text, per device, per step.

``jax.jit(f).lower(...).compile().as_text()`` is the per-device SPMD program
the backend runs (the TPU compiler's, when compiled for a TPU topology). This
module walks it from the entry computation, follows every called computation
(fusions, async wrappers, calls, loop bodies, branches), and counts each
collective with the bytes of the buffer it produces on one device:

* all-gather: the gathered result; all-reduce: the reduced buffer;
* reduce-scatter: the scattered shard it keeps (it sends ``group - 1`` times that);
* all-to-all, collective-permute: the received buffer.

Loops with a ``known_trip_count`` (scanned layers, micro-batches) multiply
their body; loops without one (the sampler's decode loop) count their body
once, which for decode is exactly "one step". Conditionals count their
costliest branch. Async pairs are counted once (by their ``-done`` half, or
by the collective inside an ``async-start`` wrapper).

No JAX import: it is plain text processing, usable on saved HLO dumps.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

KINDS = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")

_DTYPE_BYTES = {
    "pred": 1, "s2": 1, "s4": 1, "s8": 1, "s16": 2, "s32": 4, "s64": 8, "u2": 1, "u4": 1, "u8": 1, "u16": 2,
    "u32": 4, "u64": 8, "f16": 2, "bf16": 2, "f32": 4, "f64": 8, "c64": 8, "c128": 16, "f8e4m3fn": 1,
    "f8e5m2": 1, "f8e4m3fnuz": 1, "f8e5m2fnuz": 1, "f8e4m3b11fnuz": 1, "f8e4m3": 1, "f8e3m4": 1, "f4e2m1fn": 1,
    "f8e8m0fnu": 1,
}
_ARRAY = re.compile(r"\b(" + "|".join(sorted(_DTYPE_BYTES, key=len, reverse=True)) + r")\[([0-9,]*)\]")
_HEADER = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][a-z0-9\-]*)\((.*)$")
_CALLED = re.compile(r"\b(?:calls|to_apply|body|condition)=%?([\w.\-]+)")
_BRANCHES = re.compile(r"\b(?:branch_computations)=\{([^}]*)\}|\b(?:true_computation|false_computation)=%?([\w.\-]+)")
_TRIP = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"')
_BODY = re.compile(r"\bbody=%?([\w.\-]+)")
_CONDITION = re.compile(r"\bcondition=%?([\w.\-]+)")
_OPERAND = re.compile(r"%([\w.\-]+)")
_DIRECTION = re.compile(r"\bdirection=(\w+)")
_INDEX = re.compile(r"\bindex=(\d+)")


def type_bytes(hlo_type: str) -> int:
    """Bytes of every array in an HLO type string (tuples summed): ``bf16[4,8]{1,0}`` -> 64."""
    total = 0
    for dtype, dims in _ARRAY.findall(hlo_type):
        n = 1
        for d in dims.split(","):
            if d:
                n *= int(d)
        total += n * _DTYPE_BYTES[dtype]
    return total


@dataclasses.dataclass
class _Op:
    name: str
    type: str
    opcode: str
    rest: str  # operands, then attributes

    @property
    def operands(self) -> list[str]:
        return _OPERAND.findall(self.rest.split(")", 1)[0])

    @property
    def literal(self) -> str:
        return self.rest.split(")", 1)[0].strip()


@dataclasses.dataclass
class CollectiveStats:
    """Per-device collectives of one step: ``{kind: [count, bytes]}``; ``dynamic_loops`` counted once."""

    counts: dict[str, int] = dataclasses.field(default_factory=lambda: {k: 0 for k in KINDS})
    bytes: dict[str, int] = dataclasses.field(default_factory=lambda: {k: 0 for k in KINDS})
    dynamic_loops: int = 0

    def add(self, other: "CollectiveStats", times: int = 1) -> None:
        for k in KINDS:
            self.counts[k] += times * other.counts[k]
            self.bytes[k] += times * other.bytes[k]
        self.dynamic_loops += other.dynamic_loops

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def lines(self) -> list[str]:
        """One line per kind: ``all-gather: 64 ops, 12.50 GiB`` (bytes per device per step)."""
        return [f"{k}: {self.counts[k]} ops, {format_bytes(self.bytes[k])}" for k in KINDS]

    def as_dict(self) -> dict:
        return {k: {"count": self.counts[k], "bytes": self.bytes[k]} for k in KINDS}


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def parse_computations(hlo_text: str) -> tuple[dict[str, list[_Op]], str]:
    """``({computation name: instructions}, entry name)`` of an HLO module's text."""
    computations: dict[str, list[_Op]] = {}
    entry, current = "", None
    for line in hlo_text.splitlines():
        if current is None:
            header = _HEADER.match(line.strip())
            if header:
                current = header.group(2)
                computations[current] = []
                if header.group(1):
                    entry = current
            continue
        if line.strip() == "}":
            current = None
            continue
        op = _INSTRUCTION.match(line)
        if op:
            computations[current].append(_Op(*op.groups()))
    if not entry:
        raise ValueError("no ENTRY computation in the HLO text")
    return computations, entry


def _kind(opcode: str) -> str | None:
    """The collective kind an opcode completes (``-start`` halves return None: their ``-done`` counts)."""
    if opcode in KINDS:
        return opcode
    if opcode.endswith("-done") and opcode[: -len("-done")] in KINDS:
        return opcode[: -len("-done")]
    return None


def collectives(hlo_text: str, only_dynamic_loops: bool = False) -> CollectiveStats:
    """Collectives one device runs per call of the compiled program (see the module docstring).

    ``only_dynamic_loops``: count only what runs inside loops of unknown trip
    count (one iteration each): the per-step part of a decode loop, without
    what the call does once before or after it.
    """
    computations, entry = parse_computations(hlo_text)
    memo: dict[tuple[str, bool], CollectiveStats] = {}

    def visit(name: str, stack: tuple[str, ...], counting: bool) -> CollectiveStats:
        if (name, counting) in memo:
            return memo[(name, counting)]
        if name in stack or name not in computations:
            return CollectiveStats()
        stats = CollectiveStats()
        for op in computations[name]:
            kind = _kind(op.opcode)
            if kind is not None:
                if counting:
                    stats.counts[kind] += 1
                    stats.bytes[kind] += type_bytes(op.type)
                continue
            if op.opcode == "while":
                body = _BODY.search(op.rest)
                trip = trip_count(op, computations, name)
                if body:
                    inner = visit(body.group(1), stack + (name,), counting or trip is None)
                    stats.add(inner, 1 if trip is None else trip)
                    if trip is None:
                        stats.dynamic_loops += 1
                continue
            branches = [b for m in _BRANCHES.finditer(op.rest) for b in _names(m.group(1) or m.group(2))]
            if branches:
                costs = [visit(b, stack + (name,), counting) for b in branches]
                stats.add(max(costs, key=lambda s: (s.total_bytes, sum(s.counts.values()))))
                continue
            for called in _CALLED.findall(op.rest):
                stats.add(visit(called, stack + (name,), counting))
        memo[(name, counting)] = stats
        return stats

    return visit(entry, (), not only_dynamic_loops)


def trip_count(op: _Op, computations: dict[str, list[_Op]], parent: str) -> int | None:
    """Iterations of a ``while`` op, or None when they depend on run-time values.

    CPU/GPU HLO carries ``known_trip_count``; the TPU compiler's does not, so
    the count is read off the loop itself: a condition ``counter < N`` (or
    ``<=``) on one tuple element, with that element's initial value a constant
    in the parent computation (counters step by one in XLA's canonical loops).
    """
    known = _TRIP.search(op.rest)
    if known:
        return int(known.group(1))
    cond = _CONDITION.search(op.rest)
    if not cond or cond.group(1) not in computations:
        return None
    cond_ops = {o.name: o for o in computations[cond.group(1)]}
    compares = [o for o in cond_ops.values() if o.opcode == "compare"]
    if len(compares) != 1:
        return None
    compare = compares[0]
    direction = _DIRECTION.search(compare.rest)
    if not direction or direction.group(1) not in ("LT", "LE") or len(compare.operands) != 2:
        return None
    counter, bound = (cond_ops.get(n) for n in compare.operands)
    if counter is None or bound is None or counter.opcode != "get-tuple-element" or bound.opcode != "constant":
        return None
    index = _INDEX.search(counter.rest)
    try:
        limit = int(bound.literal)
    except ValueError:
        return None
    parent_ops = {o.name: o for o in computations[parent]}
    start = 0
    init = parent_ops.get(op.operands[0]) if op.operands else None
    if init is not None and init.opcode == "tuple" and index:
        first = parent_ops.get(init.operands[int(index.group(1))])
        while first is not None and first.opcode in ("copy", "bitcast", "convert", "copy-done", "copy-start"):
            first = parent_ops.get(first.operands[0]) if first.operands else None  # layout moves of the init
        if first is None or first.opcode != "constant":
            return None  # a counter that starts from a run-time value
        try:
            start = int(first.literal)
        except ValueError:
            return None
    return max(0, limit - start + (1 if direction.group(1) == "LE" else 0))


def _names(text: str) -> Iterable[str]:
    return [t.strip().lstrip("%") for t in text.split(",") if t.strip()]
