"""The training runtime every bundle carries (see the package docstring once written)."""
