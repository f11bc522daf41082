"""Graph -> a PyTorch module (`ktrans codegen FILE --target torch`): a torch.nn.Module
that computes what Keras computes for the .kdl model, as a PyTorch user would write it.

The code per layer lives in one module per family, mirroring transpiler/layers/ (core,
conv, pooling, normalization, recurrent, attention, merging, reshaping, activations,
preprocessing, applications, expressions), each layer class registered by
`@torch_layer`; a test checks that every catalogue layer has an emitter. Where torch.nn
has no Keras-exact module (TensorFlow's 'same' padding for strides, BatchNormalization's
moving statistics, Keras's recurrent cells and masks...), the emitters use the
definitions of templates/torch_layers/, which the generator copies into the generated
file (only those a model uses). Every layer that Keras autocasts gets float32 inputs (a
float64 input is cast first, `x = x.float()`), and a call's keyword tensors
(`mask=`, `attention_mask=`) and flags reach the emitter as `e.call`.

To add a layer, write one emitter in the family's module:

    from transpiler.emit.torch.code import call, num
    from transpiler.emit.torch.layer_emit import Out
    from transpiler.emit.torch.registry import torch_layer

    @torch_layer("Scale")
    def scale(e, inputs):
        (x,) = inputs                                    # TValues (variable, type, layout)
        module = e.module(call(e.helper("Scale"), num(e.layer.factor)))  # its attribute
        return [Out(call(module, e.ref(x)), e.types[0], x.perm)]

`e.module(ctor, weights)` declares the layer's one attribute (built by `ctor` in the
model's __init__) and the Keras weights it holds, {"kernel": ("weight", "linear")}
(the parameter and the layout conversion of templates/torch_layers/weights.py);
`e.logical(x)` / `e.channels_first(x)` ask for a layout (see values.py); `e.helper(name)`
copies a definition of templates/torch_layers (there: `class Scale(nn.Module)`) into the
file. Outputs carry their storage order and, where the emitter sets them
(`@torch_layer(..., sets_masks=True)`), their Keras masks; otherwise the first input's
mask passes on when the layer supports masking.

The rest of the package turns the graph into classes: structure.py finds the block
instances (each a scope) and the runs a `repeat` made; scope.py writes one scope's
forward (chain variables, layout conversions, masks) and collects its attributes;
loops.py turns a repeat into a loop over an nn.ModuleList where its iterations write the
same code; generator.py makes one class per block (and variant), module.py the file.

The generated module's API (what training code builds on), the same for every model:

- `Model()` builds it (torch's default initialization); `Model.from_keras_weights(arrays)`
  with Keras-layout weights (`numpy.load` of the `<Model>.init.npz` codegen writes). The
  module imports torch only: reading files is the caller's (the bundle runtime's);
- `forward(*inputs, return_masks=False)`: the inputs by position in the .kdl's order
  (`Model.input_names`), as declared (batch first, channels last by default); it returns
  the output, or a tuple in `Model.output_names` order; with `return_masks=True`,
  `(outputs, masks)`, masks mirroring outputs (the Keras mask of each, or None);
- `train()` / `eval()`: Dropout, noise and recurrent dropout only in training;
  BatchNormalization's batch statistics and its Keras-style moving averages in training;
- `load_keras_weights(arrays)` / `keras_weights()`: `"<layer>/<weight>"` arrays in Keras
  layout in and out; `KERAS_LAYERS` (and `keras_weight_places()`) say which parameter or
  buffer holds each; frozen layers' parameters have requires_grad False.
"""

from transpiler.emit.torch import (  # noqa: F401  (importing registers the emitters)
    activations,
    applications,
    attention,
    conv,
    core,
    expressions,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    reshaping,
)
from transpiler.emit.torch.module import TorchModule, generate_torch, torch_module
from transpiler.emit.torch.registry import TORCH_LAYERS, torch_layer

__all__ = ["TORCH_LAYERS", "TorchModule", "generate_torch", "torch_layer", "torch_module"]
