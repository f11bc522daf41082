"""The training graph's own input and output names, besides the batch (model inputs,
`target:<output>`), the state (`<layer>/<weight>`, `slot:...`) and `new:<state>`: the step
counter, the learning rate and the total loss. Everything else names them through these
constants (re-exported by transpiler.emit.train.model), so renaming them is one edit."""

STEP_INPUT = "step"
LR_INPUT = "lr"
LOSS_OUTPUT = "loss"
