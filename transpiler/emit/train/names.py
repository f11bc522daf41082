"""The training graph's own inputs and outputs, named in a namespace that no .kdl name can
produce (a .kdl identifier has no `:`), so that a model input or output called `loss`,
`step` or `lr` cannot collide with them. The emitters, the evaluation model, the tests
and the generated scripts (through their settings) use these constants, never the
literal names."""

from __future__ import annotations

STEP = "ktrans:step"  # int64 scalar input: the steps done so far
LEARNING_RATE = "ktrans:lr"  # float scalar input: this step's learning rate
LOSS = "ktrans:loss"  # float scalar output: the total loss, as Keras logs it

TARGET = "target:"  # + output name: a trained output's target input
NEW = "new:"  # + state name: a parameter's, buffer's or slot's value after the step
LOSS_OF = "loss:"  # + output name: one output's loss, for models with several losses
