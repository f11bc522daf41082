"""Emitters: views of a checked Graph (ONNX for inference and training, Python code)."""
