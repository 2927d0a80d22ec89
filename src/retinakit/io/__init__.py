"""Input and output: reading images and videos, listing inputs, label files, output formats, drawing.

numpy + OpenCV only (no PyTorch).
"""
