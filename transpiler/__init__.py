"""ktrans: a compiler for .kdl model files (a small, Keras-flavoured language).

Pipeline: text --parser--> AST --graph--> checked Graph --emit--> ONNX / code / diagrams.
"""

__version__ = "0.1.0"
