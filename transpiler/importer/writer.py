"""The planned graph -> .kdl text, laid out as the files in examples/ are.

A linear stretch is a pipeline (bare statements when it continues the previous value);
tensors used more than once, by several-input layers or by expressions get a variable
named after the Keras layer that makes them; shared layers are a variable called twice;
a model nested in the model (ConvNeXt's Sequential stages) becomes a block, defined
before the model, whose instance Keras's nested-model name names. Layer names are
written where ktrans would not give the same one (naming.LayerNames); only arguments that
differ from Keras's defaults are written (layer_calls).

Every line remembers the Keras layer it came from, so a check of the written file that
fails can name the layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transpiler.importer.errors import ImportFailure
from transpiler.importer.kgraph import Call, KLayer, KModel, Ref
from transpiler.importer.layer_calls import (
    CallText,
    Prepared,
    layer_class,
    nested_values,
    prepare,
    render_call,
)
from transpiler.importer.naming import (
    LAYER_NAME,
    LayerNames,
    Variables,
    block_name,
    identifier,
    model_identifier,
)
from transpiler.importer.ops import op_expression
from transpiler.importer.plan import Chain, call_inputs, plan
from transpiler.importer.values import KEYWORDS
from transpiler.layers import LAYERS
from transpiler.layers.base import snake_case

LINE = 100
INDENT = "    "
#: .kdl dtypes of inputs (transpiler.graph.types.DTYPES)
INPUT_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8")


@dataclass
class Line:
    text: str
    layer: KLayer | None = None


@dataclass
class FileWriter:
    """State shared by the model and its blocks: automatic names, blocks written."""

    force: set[str] = field(default_factory=set)
    names: LayerNames = field(init=False)
    block_names: set[str] = field(default_factory=set)
    blocks: list[list[Line]] = field(default_factory=list)
    #: id(KLayer) -> the layer's name in the .kdl graph
    kdl_names: dict[int, str] = field(default_factory=dict)
    #: .kdl name -> Keras name, where they differ
    renamed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = LayerNames(self.force)


def layer_name(layer: KLayer) -> str:
    """The Keras layer name as ktrans can hold it (letters, digits, _ . -)."""
    return layer.name if LAYER_NAME.fullmatch(layer.name) else identifier(layer.name)


class BodyWriter:
    def __init__(
        self, file: FileWriter, model: KModel, *, block: bool, frozen: bool, depth: int = 1
    ) -> None:
        self.file = file
        self.depth = depth  # indentation levels of the body
        self.model = model
        self.block = block
        self.frozen = frozen  # the model is not trainable: nor are its layers
        self.prepared: dict[int, Prepared] = {}
        self.vars = Variables(set(file.block_names))
        self.tensor_var: dict[Ref, str] = {}
        self.layer_var: dict[int, str] = {}
        self.bound: set[str] = set()
        self.lines: list[Line] = []

    # ------------------------------------------------------------ preparation

    def _prepare(self) -> dict[int, int]:
        outputs_of: dict[int, int] = {}
        for layer in self.model.layers:
            if layer.is_op:
                n = 1
            elif layer.model is not None:
                if len(layer.calls) != 1:
                    raise ImportFailure(
                        f"the nested model is called {len(layer.calls)} times; .kdl blocks "
                        "make new layers at each use, so the calls would not share weights",
                        "call the nested model once, or write its layers into the model",
                    ).at_layer(layer.name, layer.class_name)
                n = len(layer.model.outputs)
            else:
                try:
                    cls = layer_class(
                        layer.name, layer.class_name, layer.module, layer.registered_name
                    )
                    p = prepare(cls, layer.config, layer.build_config)
                except ImportFailure as e:
                    raise e.at_layer(layer.name, layer.class_name) from None
                if self.frozen:
                    p.trainable = False
                self.prepared[id(layer)] = p
                n = getattr(p.layer(layer_name(layer)), "num_outputs", 1)
            for c in layer.calls:
                outputs_of[id(c)] = n
        return outputs_of

    # ------------------------------------------------------------ the body

    def render(self) -> list[Line]:
        model = self.model
        outputs_of = self._prepare()
        the_plan = plan(model, outputs_of)
        inputs = model.inputs
        for kin, ref in zip(inputs, model.input_refs):
            var = self.vars.fresh(kin.name)
            self.tensor_var[ref] = var
            if self.block:
                self.lines.append(Line(f"input {var}"))
            else:
                self.lines.append(Line(f"input {var}: {_input_type(kin)}"))
            self.bound.add(var)
        if not self.block:
            self.lines.append(Line(""))
        outputs = self._output_names(the_plan)
        consumers = the_plan.consumers
        current: Ref | None = model.input_refs[-1] if model.input_refs else None
        inline = self._inline_outputs(the_plan, outputs)
        for chain in the_plan.chains:
            results = chain.results()
            used = [r for r in results if consumers.get(r)]
            out_name = next((outputs[r] for r in results if r in outputs and inline), None)
            if not used and not any(r in the_plan.output_refs for r in results):
                continue  # nothing needs it (Keras keeps only what the outputs need)
            target = None
            if len(results) > 1:
                for r in results:
                    self.tensor_var[r] = self.vars.fresh(_hint(r))
                target = ", ".join(self.tensor_var[r] for r in results)
            elif out_name is not None:
                target = f"output {out_name}"
                self.tensor_var[results[0]] = out_name
            elif used or results[0] in outputs:
                var = self.vars.fresh(_hint(results[0], chain.last.layer))
                self.tensor_var[results[0]] = var
                target = var
            try:
                self._statement(chain, target, current)
            except ImportFailure as e:
                raise e.at_layer(chain.first.layer.name, chain.first.layer.class_name) from None
            if target is not None:
                self.bound.update(t.strip() for t in target.removeprefix("output ").split(","))
            current = results[0] if len(results) == 1 else None
        if not inline and outputs and not self._implicit_output(the_plan):
            for _, ref in model.outputs:
                self.lines.append(Line(f"output {outputs[ref]} = {self._var(ref)}"))
        return self.lines

    def _output_names(self, the_plan) -> dict[Ref, str]:
        """The output statement names (none for a single implicit output)."""
        if self._implicit_output(the_plan):
            return {}
        names: dict[Ref, str] = {}
        for name, ref in self.model.outputs:
            if ref in names:
                raise ImportFailure(f"the model outputs one tensor twice ('{name}')")
            names[ref] = self.vars.fresh(name)
        return names

    def _implicit_output(self, the_plan) -> bool:
        """A single output whose name is Keras's default (its layer's) and that nothing
        else uses: the model's last value, named as ktrans names it."""
        model = self.model
        if len(model.outputs) != 1 or (model.outputs_are_named and not self.block):
            return False
        name, ref = model.outputs[0]
        if not the_plan.chains or ref not in the_plan.chains[-1].results():
            return False
        if the_plan.consumers.get(ref) or ref in model.input_refs:
            return False
        return self.block or name == ref.layer

    def _inline_outputs(self, the_plan, outputs: dict[Ref, str]) -> bool:
        """Output statements in place when the chains make them in Keras's order."""
        if not outputs:
            return False
        made = [r for chain in the_plan.chains for r in chain.results() if r in outputs]
        wanted = [ref for _, ref in self.model.outputs]
        return made == wanted and all(
            len(c.results()) == 1 for c in the_plan.chains if any(r in outputs for r in c.results())
        )

    # ------------------------------------------------------------ one statement

    def _var(self, ref: Ref) -> str:
        if ref not in self.tensor_var:
            raise ImportFailure(f"a tensor of '{ref.layer}' is used before it is made")
        return self.tensor_var[ref]

    def bare_ok(self, name: str) -> bool:
        """A symbol may be written bare unless the name means something else here (a
        variable, a block, a layer class); function names read as their names."""
        return (
            name not in self.bound
            and name not in self.file.block_names
            and name not in LAYERS
            and name not in KEYWORDS
        )

    def _statement(self, chain: Chain, target: str | None, current: Ref | None) -> None:
        first = chain.first
        steps: list[tuple[str, KLayer]] = []
        single = (
            not first.layer.is_op and call_inputs(first) == [*first.args] and len(first.args) == 1
        )
        start = None
        if first.layer.is_op:
            expr, fn = op_expression(first, self.tensor_var)
            self.file.names.expression(fn)
            # |> binds loosest, so `a + b |> L` pipes the sum; the parentheses are for the
            # reader, where a line may hold them (not at its start)
            start = expr if len(chain.calls) == 1 or target is None else f"({expr})"
        elif not single:
            args = ", ".join(self._var(r) for r in call_inputs(first))
            start = f"{self._callee(first)}({args})"
        else:
            src = first.args[0]
            if not (target is None and src == current):
                start = self._var(src)
            steps.append((self._callee(first), first.layer))
        for c in chain.calls[1:]:
            steps.append((self._callee(c), c.layer))
        self._emit(target, start, steps, first.layer)

    def _emit(self, target, start, steps, layer) -> None:
        if start is None:  # bare statements, each applying to the value before it
            for text, owner in steps:
                self._call_lines("", text, owner)
            return
        prefix = f"{target} = " if target else ""
        parts = [start] + [f"|> {text}" for text, _ in steps]
        one_line = prefix + " ".join(parts)
        if self._fits(one_line) or not steps:
            self.lines.append(Line(one_line, steps[0][1] if steps else layer))
            return
        self.lines.append(Line(prefix + start, layer))
        for text, owner in steps:
            self._call_lines(f"{INDENT}|> ", text, owner)

    def _fits(self, text: str) -> bool:
        return len(text) + self.depth * len(INDENT) <= LINE

    def _call_lines(self, lead: str, call, owner) -> None:
        """`lead` + the call, on one line if it fits, else one argument per line."""
        if self._fits(lead + str(call)) or not isinstance(call, CallText):
            self.lines.append(Line(lead + str(call), owner))
            return
        inner = call.lines(INDENT)
        pad = " " * (len(lead) - len(lead.lstrip()))
        self.lines.append(Line(lead + inner[0], owner))
        self.lines += [Line(pad + text, owner) for text in inner[1:]]

    def _callee(self, call: Call) -> str | CallText:
        """What a call applies: a layer call, a shared layer's variable, a block."""
        layer = call.layer
        if layer.model is not None:
            return self._block(layer) + "()"
        shared = len(layer.calls) > 1
        if shared and id(layer) in self.layer_var:
            return self.layer_var[id(layer)]
        text = self._layer_text(layer)
        if not shared:
            return text
        var = self.vars.fresh(f"{layer.name}_layer")
        self.layer_var[id(layer)] = var
        self._call_lines(f"{var} = ", text, layer)
        self.bound.add(var)
        return var

    def _layer_text(self, layer: KLayer) -> CallText:
        p = self.prepared[id(layer)]
        nested = {id(v): str(self._call(v.prepared, v.name)[0]) for v in nested_values(p)}
        text, name = self._call(p, layer_name(layer), nested)
        self.file.kdl_names[id(layer)] = name
        if name != layer.name:
            self.file.renamed[name] = layer.name
        return text

    def _call(self, p: Prepared, name: str, nested: dict | None = None):
        """A layer created here: (its call, its name in the .kdl graph), the name written
        where ktrans would give another."""
        written = self.file.names.layer(p.cls.__name__, name)
        text = render_call(p, written, self.bare_ok, nested)
        return text, written or name

    def _block(self, layer: KLayer) -> str:
        """Writes the block for a nested model (at its use, so that the automatic names of
        its layers come in the order ktrans creates them) and returns its name."""
        nested = layer.model
        name = block_name(nested.name, self.file.block_names)
        self.file.names.block(name)
        frozen = self.frozen or not nested.trainable or layer.config.get("trainable") is False
        body = BodyWriter(self.file, nested, block=True, frozen=frozen).render()
        kind = "Sequential" if nested.kind == "Sequential" else "functional"
        lines = [
            Line(f"# {nested.name}: a {kind} model nested in the Keras model", layer),
            Line(f"block {name}() {{", layer),
            *[_indented(ln) for ln in body],
            Line("}"),
        ]
        self.file.blocks.append(lines)
        return name


def _indented(line: Line) -> Line:
    return Line(INDENT + line.text if line.text else "", line.layer)


def _hint(ref: Ref, layer: KLayer | None = None) -> str:
    if layer is not None and layer.is_op:
        # Keras numbers its operations from global counters (add_21): named by what
        # they compute instead, so that the text does not depend on the Keras session
        return snake_case(layer.class_name)
    base = ref.layer if ref.node == 0 else f"{ref.layer}_{ref.node}"
    return base if ref.index == 0 else f"{base}_{ref.index}"


def _input_type(kin) -> str:
    if kin.dtype not in INPUT_DTYPES and kin.dtype != "bool":
        raise ImportFailure(
            f"the input dtype {kin.dtype} has no .kdl equivalent", key="dtype"
        ).at_layer(kin.name, "InputLayer")
    dims = ", ".join("?" if d is None else str(d) for d in kin.shape)
    return f"{kin.dtype}[{dims}]"


def model_text(model: KModel, header: list[str], force: set[str]) -> tuple[str, FileWriter, list]:
    """(the .kdl text, the writer's state, the Keras layer of each line or None)."""
    file = FileWriter(force)
    body = BodyWriter(file, model, block=False, frozen=not model.trainable).render()
    name = model_identifier(model.name)
    lines: list[Line] = [Line(h) for h in header] + [Line("")]
    for block in file.blocks:
        lines += block + [Line("")]
    lines.append(Line(f"model {name} {{"))
    lines += [_indented(ln) for ln in body]
    lines.append(Line("}"))
    text = "\n".join(ln.text for ln in lines) + "\n"
    return text, file, [ln.layer for ln in lines]
