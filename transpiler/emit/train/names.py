"""The training graph's own inputs and output, named in a namespace that no .kdl name can
produce (a .kdl identifier has no `:`), so that a model input or output called `loss`,
`step` or `lr` cannot collide with them: the step counter, the learning rate and the
total loss. Everything else names them through these constants (re-exported by
transpiler.emit.train.model; the generated scripts get them through their settings), so
renaming them is one edit."""

from __future__ import annotations

STEP_INPUT = "ktrans:step"  # int64 scalar input: the steps done so far
LR_INPUT = "ktrans:lr"  # float scalar input: this step's learning rate
LOSS_OUTPUT = "ktrans:loss"  # float scalar output: the total loss, as Keras logs it

TARGET = "target:"  # + output name: a trained output's target input
NEW = "new:"  # + state name: a parameter's, buffer's or slot's value after the step
LOSS_OF = "loss:"  # + output name: one output's loss, for models with several losses
