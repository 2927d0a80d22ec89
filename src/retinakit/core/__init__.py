"""The base layer: images, boxes/IoU/NMS, anchors, box coding and the raw network outputs.

With :mod:`retinakit.config`, :mod:`retinakit.errors` and :mod:`retinakit.landmarks` it imports nothing
else of retinakit; every other package builds on it (see the layer contract in ``pyproject.toml``).
"""
