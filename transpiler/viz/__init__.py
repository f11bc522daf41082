"""Diagrams: pictures of models and of ONNX files, drawn with Graphviz.

- `transpiler.viz.model_graph` draws a ktrans model (the `.kdl` layer graph).
- `transpiler.viz.onnx_graph` draws any ONNX file, Netron-style: one box per op,
  weights folded into the boxes, edges labelled with inferred tensor shapes.
- `transpiler.viz.render` writes a `graphviz.Digraph` to .svg/.png/.pdf/.dot.

Submodules are not imported here, so `import transpiler.viz` stays cheap (no onnx,
no graphviz) for commands that never draw anything.
"""
