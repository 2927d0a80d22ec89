"""Tools on exported ONNX graphs, no PyTorch needed: int8 quantisation (:mod:`~retinakit.onnx.quantize`),
cross-layer equalisation (:mod:`~retinakit.onnx.equalise`) and the graph with the preprocessing inside
(:mod:`~retinakit.onnx.fused_input`). Exporting a PyTorch model to ONNX is :mod:`retinakit.models.export`."""
