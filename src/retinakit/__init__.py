"""retinakit: RetinaFace face detection with built-in weights, ONNX Runtime by default.

>>> import skimage.data                     # a photo to try it on
>>> from retinakit import Detector
>>> faces = Detector()(skimage.data.astronaut(), color="rgb")   # or a path: Detector()("photo.jpg")
>>> faces.boxes.shape, faces.scores.shape, faces.landmarks.shape   # xyxy pixels, scores, 5 landmarks
((1, 4), (1,), (1, 5, 2))

PyTorch is optional: it is imported only by the ``torch`` backend, training and export.
"""

from retinakit.config import AnchorConfig, InputConfig, ModelConfig, ModelInfo, get_preset
from retinakit.core.images import read_image
from retinakit.detector import Detector, DetectorConfig
from retinakit.errors import ImageError, RetinakitError
from retinakit.inference.postprocess import PostprocessConfig
from retinakit.inference.preprocess import ResizePolicy
from retinakit.landmarks import FaceLandmark
from retinakit.result import Face, Faces

__version__ = "0.1.0"

__all__ = [
    "AnchorConfig",
    "Detector",
    "DetectorConfig",
    "Face",
    "FaceLandmark",
    "Faces",
    "ImageError",
    "InputConfig",
    "ModelConfig",
    "ModelInfo",
    "PostprocessConfig",
    "ResizePolicy",
    "RetinakitError",
    "__version__",
    "get_preset",
    "read_image",
]
