"""The training vocabulary of `train` blocks: losses, optimizers, metrics, callbacks and
learning-rate schedules, with Keras 3 names and defaults."""
