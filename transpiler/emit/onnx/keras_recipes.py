"""ONNX layout -> Keras layout: for every Keras weight of a graph, the recipe that rebuilds
it from the ONNX initializers (the training state) with a few numpy ops.

The lowering turns each Keras weight into one or more initializers through a transform
(`ctx.weight(name, transform, key)`: a conv kernel transposed, LSTM gates reordered, a
GRU kernel split in two, ...). The recipes are not written per layer: they are derived
from the transforms themselves, so every layer of the catalogue, and every layer added
later, is covered by the same code. The graph is lowered once (on unit weights) with a
context that records each initializer's (layer, weight, transform); each transform is
then run on a probe, the weight filled with 1, 2, ..., n, which shows where every value
went:

- a value that appears once is a rearrangement; the positions of the values, read in the
  initializer's order, factor into "atoms" (runs of constant stride in the Keras weight,
  or a block permutation such as ONNX's gate order), which give the ops: reshape into the
  atoms, `take` to undo a permutation, transpose into the Keras order, reshape into the
  Keras shape (or into the box of the weight that the initializer holds);
- zeros filling the second half, and only there, are ONNX's recurrent bias where Keras
  has one bias: the two halves add (`reshape` to (2, n), `sum` over the halves), which is
  what the ONNX op computes with them, so a training step that moved both stays exact;
- anything else (a value computed from several weights, as a folded BatchNormalization)
  is not a rearrangement: such an initializer is never a source.

Each recipe is checked on a second, shuffled probe before it is returned, so a transform
that the analysis misreads fails here, not as silently wrong weights in a Keras file.
Recipes are data (transpiler.templates.ktrans_runtime.keras_export, which applies them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from transpiler.emit.onnx.context import LowerContext
from transpiler.errors import KdlError, KdlErrors
from transpiler.graph.model import Graph
from transpiler.templates.ktrans_runtime.keras_export import apply_ops


def _fail(message: str, hint: str | None = None):
    raise KdlErrors([KdlError(None, message, hint)])


class _RecordingContext(LowerContext):
    """A LowerContext that remembers how each initializer was made from a Keras weight."""

    def __init__(self, builder, weights) -> None:
        super().__init__(builder, weights)
        #: initializer name -> (layer, Keras weight name, transform or None)
        self.sources: dict[str, tuple[object, str, Callable | None]] = {}

    def weight(self, name, transform=None, key="", layer=None) -> str:
        owner = layer or self.layer
        initializer = super().weight(name, transform, key, layer)
        self.sources.setdefault(initializer, (owner, name, transform))
        return initializer


def initializer_sources(graph: Graph) -> dict[str, tuple[object, str, Callable | None]]:
    """Each initializer of the inference model -> (layer, Keras weight, transform)."""
    from transpiler.emit.onnx.model import _lower_graph
    from transpiler.emit.versions import OPSET

    weights = {
        layer.name: {w.name: np.ones(w.shape, np.float32) for w in layer.weights or []}
        for layer in graph.layers
    }
    made: list[_RecordingContext] = []

    def context(builder, values):
        made.append(_RecordingContext(builder, values))
        return made[-1]

    _lower_graph(graph, weights, None, OPSET, context=context)
    return made[0].sources


# ------------------------------------------------------------------ one initializer


def _probe(shape: tuple[int, ...]) -> np.ndarray:
    return np.arange(1, int(np.prod(shape, dtype=np.int64)) + 1, dtype=np.int64).reshape(shape)


def _as_indices(value) -> np.ndarray | None:
    """The transform's output on the probe as integers, or None if it computed values."""
    out = np.asarray(value)
    if out.dtype.kind in "iu":
        return out.astype(np.int64)
    if out.dtype.kind == "f" and np.all(np.isfinite(out)) and np.all(out == np.round(out)):
        return out.astype(np.int64)
    return None


def _divisors(n: int) -> list[int]:
    """The divisors of n above 1, in increasing order."""
    small = [r for r in range(2, int(n**0.5) + 1) if n % r == 0]
    large = [n // r for r in reversed(small) if n // r != r]
    return small + large + ([n] if n > 1 else [])


def _fits(starts: np.ndarray, r: int, offsets: np.ndarray) -> bool:
    groups = starts.reshape(-1, r)
    return bool(np.array_equal(groups - groups[:, :1], np.broadcast_to(offsets, groups.shape)))


def _next_atom(starts: np.ndarray) -> np.ndarray | None:
    """The offsets (in the Keras weight) of the next atom out, read off the starts of the
    blocks found so far: the longest run of one stride that repeats through all blocks,
    else the smallest permutation of such a run (a block reorder) that repeats."""
    n = starts.size
    stride = starts[1] - starts[0]
    run = 1
    while run < n and starts[run] - starts[run - 1] == stride:
        run += 1
    for r in reversed([r for r in _divisors(n) if r <= run]):
        offsets = starts[:r] - starts[0]
        if _fits(starts, r, offsets):
            return offsets
    for r in _divisors(n):
        offsets = starts[:r] - starts[0]
        ordered = np.sort(offsets - offsets.min())
        step = ordered[1] - ordered[0]
        if step > 0 and np.array_equal(ordered, np.arange(r) * step) and _fits(starts, r, offsets):
            return offsets
    return None


def _rearrangement(indices: np.ndarray, keras_shape: tuple[int, ...]):
    """(ops, box) taking an array whose flat values hold Keras flat `indices` to the box
    of the Keras weight those indices fill; None if they fill no box."""
    flat = indices.reshape(-1)
    m = flat.size
    atoms: list[np.ndarray] = []  # innermost first
    block = 1
    while block < m:
        offsets = _next_atom(flat[::block])
        if offsets is None:
            return None
        atoms.append(offsets)
        block *= offsets.size
    atoms.reverse()  # outermost first: the order of the initializer's values
    ops: list = []
    sizes = [a.size for a in atoms]
    if list(indices.shape) != sizes:
        ops.append(["reshape", sizes])
    strides = []
    for axis, offsets in enumerate(atoms):
        order = np.argsort(offsets, kind="stable")
        if not np.array_equal(order, np.arange(offsets.size)):
            ops.append(["take", axis, [int(i) for i in order]])
        ordered = offsets[order]
        strides.append(int(ordered[1] - ordered[0]))
    perm = sorted(range(len(atoms)), key=lambda a: -strides[a])
    if perm != list(range(len(atoms))):
        ops.append(["transpose", perm])
    where = np.unravel_index(flat, keras_shape)
    lo = [int(w.min()) for w in where]
    hi = [int(w.max()) + 1 for w in where]
    box = [h - low for low, h in zip(lo, hi)]
    if int(np.prod(box, dtype=np.int64)) != m:
        return None
    ops.append(["reshape", box])
    return ops, [[low, h] for low, h in zip(lo, hi)]


def part_recipe(transform: Callable | None, keras_shape: tuple[int, ...]) -> dict | None:
    """How one initializer made by `transform` from a Keras weight gives (part of) that
    weight back: {"shape": the initializer's shape, "ops": [...], "at": box or None};
    None if it is not a rearrangement."""
    keras_shape = tuple(int(d) for d in keras_shape)
    if transform is None:
        return {"shape": list(keras_shape), "ops": [], "at": None}
    probe = _probe(keras_shape)
    made = _as_indices(transform(probe))
    if made is None:
        return None
    state_shape = [int(d) for d in made.shape]
    ops: list = []
    flat = made.reshape(-1)
    if (flat == 0).any():
        half = flat.size // 2
        if flat.size % 2 or (flat[half:] != 0).any() or (flat[:half] == 0).any():
            return None
        ops += [["reshape", [2, half]], ["sum", 0]]
        flat = flat[:half]
    if flat.size == 0 or (flat < 1).any() or flat.max() > probe.size:
        return None
    if np.bincount(flat).max() > 1:  # a value used twice
        return None
    found = _rearrangement(flat - 1, keras_shape)
    if found is None:
        return None
    more, box = found
    ops += more
    full = all(lo == 0 and hi == d for (lo, hi), d in zip(box, keras_shape))
    part = {"shape": state_shape, "ops": ops, "at": None if full else box}
    return part if _verified(transform, keras_shape, part) else None


def _verified(transform, keras_shape, part) -> bool:
    """The part, on a shuffled probe, gives back the values of its box."""
    rng = np.random.default_rng(0)
    n = int(np.prod(keras_shape, dtype=np.int64))
    probe = (rng.permutation(n) + 1).astype(np.int64).reshape(keras_shape)
    made = _as_indices(transform(probe))
    if made is None:
        return False
    try:
        back = apply_ops(made, part["ops"])
    except ValueError:
        return False
    box = part["at"]
    want = probe if box is None else probe[tuple(slice(lo, hi) for lo, hi in box)]
    return back.shape == want.shape and bool(np.array_equal(back, want))


# ------------------------------------------------------------------ the graph


def keras_recipes(graph: Graph, state_names: Iterable[str] | None = None) -> dict[str, dict]:
    """`{"<layer>/<weight>": recipe}` for every weight of `graph`, from the inference
    model's initializers (restricted to `state_names`, the tensors a state holds, when
    given). A weight that no such initializer gives back is an error naming it."""
    sources = initializer_sources(graph)
    allowed = None if state_names is None else set(state_names)
    # keyed by name: a wrapped layer lowers as a copy named `<wrapper>/<inner>`, so its
    # weight `w` is the wrapper's `<inner>/w`, `<wrapper>/<inner>/w` either way
    by_weight: dict[str, list[tuple[str, Callable | None]]] = {}
    for initializer, (layer, name, transform) in sources.items():
        if allowed is None or initializer in allowed:
            by_weight.setdefault(f"{layer.name}/{name}", []).append((initializer, transform))
    recipes: dict[str, dict] = {}
    cache: dict = {}
    for layer in graph.layers:
        for w in layer.weights or []:
            key = f"{layer.name}/{w.name}"
            recipes[key] = _weight_recipe(key, w.shape, by_weight.get(key, []), cache)
    return recipes


def _cached_part(transform, shape, cache: dict) -> dict | None:
    """part_recipe, once per plain function (conv_kernel, ...) and shape: a ResNet has
    many kernels of one shape. Closures and methods depend on more than the shape."""
    plain = getattr(transform, "__closure__", True) is None and not hasattr(transform, "__self__")
    if not plain:
        return part_recipe(transform, shape)
    key = (transform, tuple(shape))
    if key not in cache:
        cache[key] = part_recipe(transform, shape)
    return cache[key]


def _weight_recipe(key: str, shape, candidates, cache: dict) -> dict:
    covered = np.zeros(shape, bool)
    parts = []
    for initializer, transform in candidates:
        part = _cached_part(transform, shape, cache)
        if part is None:
            continue
        box = (
            tuple(slice(None) for _ in shape)
            if part["at"] is None
            else tuple(slice(lo, hi) for lo, hi in part["at"])
        )
        if covered[box].all():
            continue
        covered[box] = True
        parts.append({"state": initializer, **part})
    if not covered.all():
        if candidates:
            names = ", ".join(name for name, _ in candidates)
            how = f"only folded into other values ({names})"
        else:
            how = "in no tensor of its own (it is folded into other values)"
        _fail(
            f"cannot write the weight '{key}' in Keras layout: the ONNX model holds it {how}",
            "the Keras formats need layers whose inference form keeps their weights as "
            "they are (BatchNormalization directly on a channels_last image input folds "
            "them: put a layer before it)",
        )
    return {"shape": [int(d) for d in shape], "parts": parts}
