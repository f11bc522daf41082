"""Keras-exact PyTorch building blocks for `ktrans codegen --target torch`.

Each module here is plain PyTorch (torch only, never ktrans): the classes and functions
a generated model needs where torch.nn has no Keras-exact equivalent (TensorFlow-style
'same' padding for strided windows, BatchNormalization's moving statistics, recurrent
layers with Keras's gates and masks, MultiHeadAttention...). The generator copies the
definitions a model uses into its file (transpiler/emit/torch/helpers.py reads this
source as text; ktrans never imports torch), so a generated module stands alone.

Rules for the code here: top-level names are unique across these modules; a definition
may use the others by name (the generator copies those too; the imports between these
modules exist for ruff and for tests only); lines stay within 88 characters (ruff's
default line length), so a generated file passes `ruff format --check` with or without
a project configuration.
"""
