"""ktrans_runtime: the machinery of generated training scripts, one copy per bundle."""
