"""The ONNX versions ktrans writes: one default opset, pinned IR version (onnxruntime
reads both; onnx's own defaults can be newer than onnxruntime accepts)."""

OPSET = 21
SUPPORTED_OPSETS = range(20, 24)  # every op ktrans emits means the same in these
IR_VERSION = 10
