"""One generated class: the model, or a block. `ScopeEmitter` writes its `forward` item by
item (layer calls through the registry's emitters, block calls as submodules) and
collects its module attributes, each with the constructor call that builds it and the
Keras weights it holds.

Variables: a value consumed only by the next item lives in a chain variable (`x`, `y`,
`z`), so a stack reads `x = self.conv2d(x)` line after line; a value used more than once
gets a name after what made it. A layout conversion that is a value's last use reuses
its variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from transpiler.emit.code.keras_names import CodegenError
from transpiler.emit.code.keras_writer import output_hints
from transpiler.emit.torch.code import Atom, Call, Expr, Stmt, method
from transpiler.emit.torch.layer_emit import RETURNED, LayerEmit, Out, Unpack
from transpiler.emit.torch.names import MODULE_NAMES, Namer, attribute_namer
from transpiler.emit.torch.registry import TORCH_LAYERS
from transpiler.emit.torch.structure import Instance, subtree_values
from transpiler.emit.torch.values import TValue, permute_between
from transpiler.graph.model import Node, Value
from transpiler.layers.base import NO_CALL_ARGS, CallArgs, autocast_type, snake_case

CHAIN = ("x", "y", "z")


@dataclass(frozen=True)
class LayerWeights:
    """Where one Keras layer's weights live: its module (`path`, relative to the
    attribute holding it; "" for the attribute itself) and, per Keras weight name, the
    parameter or buffer of that module and its layout."""

    layer: str
    kind: str  # the Keras class
    path: str
    weights: tuple[tuple[str, str, str], ...]

    def under(self, prefix: str) -> LayerWeights:
        path = f"{prefix}.{self.path}" if self.path else prefix
        return LayerWeights(self.layer, self.kind, path, self.weights)


@dataclass
class Attr:
    """A module attribute: its name, the call constructing it (in the model's __init__,
    or handed to a block's), and the Keras weights it holds."""

    name: str
    ctor: Expr
    weights: list[LayerWeights]
    annotation: str = "nn.Module"


class ScopeEmitter:
    """Writes the forward function of one scope and collects its attributes."""

    def __init__(self, gen, instance: Instance, root: bool) -> None:
        self.gen = gen
        self.instance = instance
        self.root = root
        self.stmts: list[Stmt] = []
        self.attrs: dict[str, Attr] = {}
        self.layer_attrs: dict[int, str] = {}  # id(layer or Instance) -> attribute
        self.attr_names = attribute_namer()
        reserved = MODULE_NAMES | gen.global_names | {"self", "return_masks"}
        self.locals = Namer(reserved, fallback="t")
        self.params: list[str] = []
        self.values: dict[int, TValue] = {}
        self.uses: dict[int, int] = {}  # items (and the return) still to read a value
        self.owner: dict[str, int | None] = {}  # variable -> id of the value it holds
        self.converted: dict[tuple[int, tuple | None], TValue] = {}
        self.links: set[int] = set()  # values read once, by the next item
        self.returned: list[Value] = []
        # while a loop body is tried (loops.py): its output variable, the loop variable
        # that stands for the module, and the constructors met
        self.force_target: str | None = None
        self.loop_var = ""
        self.loop_capture: list | None = None
        self.loop_vars: set[str] = set()  # the variables of the loops written so far

    # ------------------------------------------------------------ set-up

    def bind_input(self, value: Value, name: str, perm=None, masked: bool = False) -> None:
        var = self.locals.take(name)
        mask = self.locals.fresh(f"{var}_mask") if masked else None
        self.params += [var] + ([mask] if mask else [])
        self.values[id(value)] = TValue(var, value.type, perm, mask)
        self.owner[var] = id(value)
        if mask:
            self.owner[mask] = None

    def plan(self, items: list, returned: list[Value]) -> None:
        """Counts the uses of every value and finds the chain links."""
        self.returned = returned
        consumed = [self.consumed(item) for item in items]
        for values in consumed:
            for v in values:
                self.uses[id(v)] = self.uses.get(id(v), 0) + 1
        for v in returned:
            self.uses[id(v)] = self.uses.get(id(v), 0) + 1
        for i, item in enumerate(items[:-1]):
            outs = self.produced(item)
            once = len(outs) == 1 and self.uses.get(id(outs[0])) == 1
            if once and any(v is outs[0] for v in consumed[i + 1]):
                self.links.add(id(outs[0]))

    def consumed(self, item) -> list[Value]:
        values = item.inputs if isinstance(item, Node) else subtree_values(item)[0]
        return list({id(v): v for v in values}.values())

    def produced(self, item) -> list[Value]:
        if isinstance(item, Node):
            return [v for v in item.outputs if self.gen.used(v)]
        return self.gen.returned_by(item)

    # ------------------------------------------------------------ variables

    def ref(self, v: TValue) -> Atom:
        return Atom(v.name)

    def dying(self, var: str) -> bool:
        owner = self.owner.get(var)
        return owner is None or self.uses.get(owner, 0) <= 1

    def free_chain(self) -> str | None:
        for name in CHAIN:
            if name in self.owner:
                if self.owner[name] is not None and self.uses.get(self.owner[name], 0) == 0:
                    return name
            elif name not in self.locals.used and self.locals.ok(name):
                return name
        return None

    def claim(self, name: str, owner: int | None) -> str:
        """Makes `name` (a chain variable or a fresh one) hold the value `owner`."""
        if name not in self.owner and name not in self.locals.used:
            if not self.locals.ok(name):
                raise CodegenError(f"unsafe variable {name!r}")  # a bug, never the input's
            self.locals.used.add(name)
        self.owner[name] = owner
        return name

    def temp(self, expr: Expr, like: TValue, hint: str = "") -> TValue:
        var = self.locals.fresh(hint or like.name)
        self.stmts.append(Stmt(f"{var} = ", expr))
        self.owner[var] = None
        return replace(like, name=var)

    def stored_as(self, v: TValue, perm) -> TValue:
        """v stored with `perm` (None: Keras's order); one permute per value and order."""
        dims = permute_between(v.perm, perm, v.rank)
        if dims is None:
            return v
        owner = self.owner.get(v.name)
        key = (owner, perm)
        if owner is not None and key in self.converted:
            return replace(self.converted[key], mask=v.mask)  # v's mask: maybe a call's
        expr = method(v.name, "permute", *(Atom(str(d)) for d in dims))
        if perm is not None:
            # a channels-first copy. A permuted view (and its .contiguous(), which with
            # one channel is the view itself) looks channels_last: convolutions then give
            # weight gradients in strides DDP warns about ("Grad strides do not match")
            expr = method(expr, "clone", memory_format=Atom("torch.contiguous_format"))
        if self.dying(v.name):
            target = v.name if v.name in CHAIN else (self.free_chain() or v.name)
        else:
            target = self.locals.fresh(v.name)
        target = self.claim(target, owner)
        self.stmts.append(Stmt(f"{target} = ", expr))
        out = replace(v, name=target, perm=perm)
        if owner is not None:
            # what is kept for the value's other readers has the value's own mask
            held = self.values.get(owner)
            kept = replace(out, mask=held.mask) if held is not None else out
            if target == v.name:  # v's variable now holds the permuted tensor
                self.converted = {k: t for k, t in self.converted.items() if t.name != target}
                self.values[owner] = kept
            self.converted[key] = kept
        return out

    def autocast(self, v: TValue) -> TValue:
        """v as float32 where it is a float of another precision: Keras's layers cast
        their float inputs to their compute dtype (`Layer.autocast`). Where every reader
        of v casts it (or this is its last one), v's variable is cast once, in place
        (`x = x.float()`); otherwise this reader gets its own cast."""
        cast = autocast_type(v.type)
        if cast == v.type:
            return v
        expr = method(v.name, "float")
        owner = self.owner.get(v.name)
        if owner is None or not (self.dying(v.name) or self.gen.all_readers_cast(owner)):
            return self.temp(expr, replace(v, type=cast))
        self.stmts.append(Stmt(f"{v.name} = ", expr))
        out = replace(v, type=cast)
        held = self.values.get(owner)
        self.values[owner] = replace(out, mask=held.mask) if held is not None else out
        self.converted = {
            k: t for k, t in self.converted.items() if k[0] != owner and t.name != v.name
        }
        return out

    def bool_mask(self, v: TValue) -> str:
        """The variable holding a mask given to a call (`mask=m`) as bool, in Keras's
        order: nonzero entries keep their step, as Keras's casts do."""
        v = self.stored_as(v, None)
        if v.type.dtype == "bool":
            return v.name
        return self.temp(Atom(f"{v.name} != 0"), v, f"{v.name}_mask").name

    def target_for(self, item, value: Value, inputs: list[Value]) -> str:
        """The variable a single output goes to: a chain variable where it is a link."""
        if self.force_target:
            return self.force_target
        once = self.uses.get(id(value)) == 1
        if id(value) in self.links or (once and any(value is r for r in self.returned)):
            dying = {id(u) for u in inputs if self.uses.get(id(u), 0) <= 1}
            for u in inputs:
                tv = self.values.get(id(u))
                if tv is not None and tv.name in CHAIN and id(u) in dying:
                    return tv.name
            for (owner, _), tv in self.converted.items():
                if owner in dying and tv.name in CHAIN and self.owner.get(tv.name) == owner:
                    return tv.name
            free = self.free_chain()
            if free:
                return free
        return self.locals.fresh(self.hint(item, value))

    def hint(self, item, value: Value) -> str:
        if isinstance(item, Instance):
            return self.layer_attrs.get(id(item), snake_case(item.definition or "block"))
        name = self.layer_attrs.get(id(item.layer))
        if name is None or "[" in name:
            name = re.sub(r"_\d+$", "", item.layer.name)
        outputs = [v for v in item.outputs if self.gen.used(v)]
        if len(outputs) == 1:
            return name
        base = item.outputs[0].name.split(":")[0]  # the layer's `lstm_h`, `lstm_c`...
        return name + output_hints(item)[value.index][len(base) :]

    # ------------------------------------------------------------ attributes

    def add_attr(self, hint: str, ctor: Expr, weights, annotation: str = "nn.Module") -> str:
        name = self.attr_names.fresh(hint)
        self.attrs[name] = Attr(name, ctor, weights, annotation)
        return name

    def layer_module(self, layer, ctor: Expr, weights: dict) -> Expr:
        """The module of `layer` (a LayerEmit.module call): an attribute, created on the
        layer's first call in this scope."""
        held = tuple((k, param, layout) for k, (param, layout) in weights.items())
        rel = [LayerWeights(layer.name, layer.keras_class(), "", held)] if held else []
        if not layer.trainable and "trainable=False" not in ctor.flat():
            ctor = method(ctor, "requires_grad_", Atom("False"))
        first = self.gen.shared_ctors.setdefault(id(layer), ctor.flat())
        if first != ctor.flat():  # a bug in an emitter, not the input's fault
            raise CodegenError(
                f"the shared layer '{layer.name}' would need two different modules: "
                f"{first} and {ctor.flat()}"
            )
        if id(layer) in self.gen.cross_scope:
            shared = self.gen.hoist(layer, ctor, rel)
            if self.root:
                return Atom(f"self.{shared}")
            ctor, rel = Atom(f"self.{shared}"), []  # the model's module, handed in
        if self.loop_capture is not None:
            self.loop_capture.append((ctor, rel))
            return Atom(self.loop_var)
        name = self.layer_attrs.get(id(layer))
        if name is None:
            hint = layer.name if self.root else snake_case(layer.keras_class())
            name = self.add_attr(hint, ctor, rel)
            self.layer_attrs[id(layer)] = name
        return Atom(f"self.{name}")

    # ------------------------------------------------------------ items

    def emit_item(self, item) -> None:
        if isinstance(item, Node):
            self.emit_node(item)
        else:
            self.emit_instance(item)

    def emit_node(self, node: Node) -> None:
        layer = node.layer
        entry = TORCH_LAYERS.get(type(layer).__name__)
        if entry is None:
            raise CodegenError(f"no PyTorch code is written for {layer.keras_class()} yet")
        inputs = [self.values[id(v)] for v in node.positional]
        call = node.call
        if call is not NO_CALL_ARGS:  # keyword tensors (as stored) and flags
            tensors = {k: self.values[id(v)] for k, v in call.tensors.items()}
            if "mask" in tensors:  # the layer's mask for this call, and the one passed on
                inputs[0] = replace(inputs[0], mask=self.bool_mask(tensors["mask"]))
            call = CallArgs(tensors, dict(call.options))
        if layer.autocast:
            cast: dict[str, TValue] = {}
            for i, t in enumerate(inputs):
                if t.name not in cast:
                    cast[t.name] = self.autocast(t)
                inputs[i] = replace(cast[t.name], mask=t.mask)
        layouts = self.gen.call_layouts.setdefault(id(layer), [t.perm for t in inputs])
        if node.call_index:  # a shared layer's module works on its first call's layouts
            inputs = [self.stored_as(t, perm) for t, perm in zip(inputs, layouts)]
        result = entry.emit(LayerEmit(self, layer, node, call=call), inputs)
        outs = result.outs if isinstance(result, Unpack) else result
        if not entry.sets_masks:
            first = inputs[0].mask if inputs and layer.supports_masking else None
            for i, out in enumerate(outs):
                out.mask = Atom(first) if i == 0 and first else None
        self.bind(node, node.outputs, result, node.inputs)

    def emit_instance(self, inst: Instance) -> None:
        block = self.gen.emit_block(inst, self.values)
        if self.loop_capture is not None:
            self.loop_capture.append((block.ctor, block.weights))
            ref = Atom(self.loop_var)
        else:
            hint = inst.name if self.root else snake_case(inst.definition or "block")
            name = self.add_attr(hint, block.ctor, block.weights)
            self.layer_attrs[id(inst)] = name
            ref = Atom(f"self.{name}")
        args = [Atom(tv.name) for tv in block.inputs]
        args += [Atom(tv.mask) for tv in block.inputs if tv.mask]
        expr = Call(ref, args)
        outs = [
            Out(None, v.type, perm, RETURNED if masked else None)
            for v, (perm, masked) in zip(block.returned, block.outs)
        ]
        if len(outs) == 1 and outs[0].mask is None:
            outs[0].expr = expr
            self.bind(inst, block.returned, outs, block.consumed)
        else:
            self.bind(inst, block.returned, Unpack(expr, outs), block.consumed)

    def bind(self, item, values: list[Value], result, inputs: list[Value]) -> None:
        """Assigns an item's outputs (Outs, or an Unpack of a tuple) to variables."""
        if isinstance(result, Unpack):
            targets = []
            for v in values:
                targets.append(self.locals.fresh(self.hint(item, v)) if self.gen.used(v) else "_")
            returned = [
                (v, self.locals.fresh(f"{t}_mask"))
                for v, out, t in zip(values, result.outs, targets)
                if out.mask is RETURNED
            ]
            names = targets + [m for _, m in returned]
            self.stmts.append(Stmt(f"{', '.join(names)} = ", result.expr))
            self.consume(inputs)
            mask_of = {id(v): m for v, m in returned}
            for v, out, name in zip(values, result.outs, targets):
                if name == "_":
                    continue
                mask = mask_of.get(id(v))
                if mask is None and isinstance(out.mask, Atom):
                    mask = out.mask.text  # a mask the layer passes on
                self.define(v, TValue(name, out.type, out.perm, mask))
            return
        pending = []
        for v, out in zip(values, result):
            if self.gen.used(v):
                name = self.target_for(item, v, inputs) if len(result) == 1 else None
                pending.append((v, out, name or self.locals.fresh(self.hint(item, v))))
        # masks first: they are computed from the inputs, which an output may overwrite
        masks = []
        for _, out, name in pending:
            mask = None
            if out.mask is not None:
                if isinstance(out.mask, Atom) and out.mask.text in self.owner:
                    mask = out.mask.text
                else:
                    mask = self.locals.fresh(f"{name}_mask")
                    self.stmts.append(Stmt(f"{mask} = ", out.mask))
            masks.append(mask)
        for (v, out, name), mask in zip(pending, masks):
            self.stmts.append(Stmt(f"{self.claim(name, id(v))} = ", out.expr))
            self.define(v, TValue(name, out.type, out.perm, mask))
        self.consume(inputs)

    def define(self, value: Value, tv: TValue) -> None:
        self.values[id(value)] = tv
        self.owner[tv.name] = id(value)
        self.converted = {k: t for k, t in self.converted.items() if t.name != tv.name}
        if tv.mask:
            self.owner.setdefault(tv.mask, None)

    def consume(self, inputs: list[Value]) -> None:
        for v in {id(v): v for v in inputs}.values():
            self.uses[id(v)] = self.uses.get(id(v), 1) - 1

    # ------------------------------------------------------------ the end

    def results(self) -> list[TValue]:
        """The returned values (as stored; the model's in Keras's order)."""
        out = []
        for v in self.returned:
            tv = self.values[id(v)]
            out.append(self.stored_as(tv, None) if self.root else tv)
        return out
