"""The training vocabulary of `train` blocks: losses, optimizers, metrics, callbacks and
learning-rate schedules, with Keras 3 names and defaults.

Each catalogue maps the names Keras accepts to an `Entry` (the Keras class, its arguments
with defaults and converters); `graph.train_check` uses them to turn a train block into a
`TrainConfig` whose specs carry a canonical name and every keyword argument, defaults
filled in. An emitter writes `keras.losses.<spec.keras_class>(**spec.kwargs)` and so on.
"""

from transpiler.training.callbacks import CALLBACKS, log_keys
from transpiler.training.config import (
    CallbackSpec,
    Catalogue,
    Entry,
    LossSpec,
    MetricSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainConfig,
    TrainError,
)
from transpiler.training.losses import LOSSES
from transpiler.training.metrics import METRICS
from transpiler.training.optimizers import OPTIMIZERS
from transpiler.training.schedules import SCHEDULES

CATALOGUES = {
    "losses": LOSSES,
    "optimizers": OPTIMIZERS,
    "metrics": METRICS,
    "callbacks": CALLBACKS,
    "schedules": SCHEDULES,
}

__all__ = [
    "CALLBACKS",
    "CATALOGUES",
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
    "SCHEDULES",
    "CallbackSpec",
    "Catalogue",
    "Entry",
    "LossSpec",
    "MetricSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "TrainConfig",
    "TrainError",
    "log_keys",
]
