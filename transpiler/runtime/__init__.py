"""onnxruntime sessions: device choice (cpu/cuda) and IO binding."""
