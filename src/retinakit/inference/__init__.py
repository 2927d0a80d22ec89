"""Inference without PyTorch: preprocessing, runtime backends, anchors, box coding, NMS, post-processing, TTA.

Everything here needs only numpy, OpenCV and ONNX Runtime (OpenVINO or PyTorch backends are optional).
"""
