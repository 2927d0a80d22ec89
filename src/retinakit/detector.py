"""The face detector: images in, :class:`~retinakit.result.Faces` out, on any backend."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import Generic, Literal, TypeVar, overload

import numpy as np

from retinakit.config import ModelConfig, ModelInfo, model_info_for
from retinakit.core.anchors import generate_anchors
from retinakit.core.outputs import DenseRawOutputs, RawOutputs, dense_params_of
from retinakit.errors import DetectionError
from retinakit.inference.backends import Backend, make_backend, resolve_precision
from retinakit.inference.postprocess import PostprocessConfig, postprocess
from retinakit.inference.preprocess import (
    ColorOrder,
    ImageFrame,
    ImageInput,
    ResizePolicy,
    make_batch,
    make_uint8_batch,
    plan_batches,
    resize,
    resize_by,
    to_bgr,
)
from retinakit.inference.scales import (
    ScaleConfig,
    add_lone_faces,
    check_windows,
    detail_scale,
    evidence_checks,
    faces_to_original,
    merge_scales,
    needs_verification,
    nms_merge,
    pass_factors,
    rotate_image,
)
from retinakit.inference.tta import TTAConfig, flip_faces, merge_passes, tta_passes
from retinakit.io.batching import prefetch, same_shape_batches
from retinakit.result import Faces

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Outcome(Generic[T]):
    """What :meth:`Detector.stream` yields for one input: its faces, or why there are none.

    ``item``: the input as given. ``image``: the decoded BGR uint8 ``(H, W, 3)`` image (None when it
    could not be read). ``faces``: the faces (None on error). ``error``: the exception that stopped
    this input: an :class:`~retinakit.ImageError` (not readable) or a
    :class:`~retinakit.errors.DetectionError` (its forward pass failed).
    """

    item: T
    image: np.ndarray | None = None
    faces: Faces | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.faces is not None

    @property
    def reason(self) -> str:
        """One line for a report: an unreadable image's reason, or ``detection failed: ...``."""
        if self.error is None:
            return ""
        return str(getattr(self.error, "reason", None) or self.error)


#: the :class:`DetectorConfig` fields that decide the loaded model (what :meth:`Detector.with_options` keeps)
MODEL_FIELDS = frozenset({"weights", "backend", "precision", "model", "device", "threads"})


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that decides what a :class:`Detector` returns; CLI flags map onto these fields.

    ``weights``: None for the built-in MobileNet-0.25, or an ``.onnx`` file / PyTorch checkpoint.
    ``precision``: ``auto`` (default: the backend's fastest built-in path that holds fp32 accuracy on
    this CPU, see :func:`~retinakit.inference.backends.resolve_precision`), ``fp32`` (force float), ``int8``
    (the built-in int8 model, onnx or openvino backend) or ``bf16`` (openvino backend).
    ``model``: preset name for weights that carry no config. ``short_side`` / ``max_side``: the size
    of the first pass (see :class:`~retinakit.inference.preprocess.ResizePolicy`; default original size).
    ``resize``: ``auto`` (default) adds the coarser passes a large image needs for faces bigger than the
    anchors represent (see :mod:`retinakit.inference.scales`); ``single`` runs the first pass only (the
    WIDER FACE protocols pin it). ``orientations``: angles (degrees counter-clockwise, multiples of
    90) at which the image is also run, merged, each face tagged with its angle (default ``(0,)``:
    upright only); ``"auto"`` picks the one angle whose quick low-resolution pass finds the most
    confident faces, then runs that one. ``detail`` (with ``resize="auto"``): how many pixels of the
    image one pixel of its detail spans: ``"auto"`` (default) measures it per image from a 2048 px
    long side (:func:`~retinakit.inference.scales.detail_scale`); 1 treats every image as sharp, 4 or 8
    as upscaled that many times (a digital zoom, an upscaled scan), which changes the passes run; a
    value given applies to every image, whatever its size. The thresholds
    are those of :class:`~retinakit.inference.postprocess.PostprocessConfig`. ``batch_size`` and
    ``batch_pixels``: at most this many images and network-input pixels (padded) per forward pass
    (memory grows with the pixels: see :meth:`Detector.detect_bgr`). ``scales`` / ``flip`` / ``tta_max_side`` /
    ``merge`` / ``vote_iou`` / ``vote_score``: test-time augmentation (see :mod:`retinakit.inference.tta`);
    the paper's setting is ``scales=(500, 800, 1100, 1400, 1700), flip=True``. ``flip=True`` without
    ``scales`` at ``resize="auto"`` keeps the size ladder and runs each of its passes plain and
    mirrored, merged by ``merge`` (fewer false faces on large photos, in about twice the time).
    """

    weights: str | None = None
    backend: Literal["onnx", "openvino", "torch"] = "onnx"
    precision: Literal["auto", "fp32", "int8", "bf16"] = "auto"
    model: str | None = None
    device: str = "cpu"
    threads: int | None = None
    score_threshold: float = 0.5
    nms_threshold: float = 0.4
    pre_nms_top_k: int = 5000
    max_detections: int = 750
    short_side: int | None = None
    max_side: int | None = None
    resize: Literal["auto", "single"] = "auto"
    orientations: tuple[int, ...] | Literal["auto"] = (0,)
    detail: Literal["auto", 1, 4, 8] = "auto"
    batch_size: int = 8
    batch_pixels: int = 4_000_000
    scales: tuple[int, ...] = ()
    flip: bool = False
    tta_max_side: int = 2600
    merge: Literal["vote", "nms"] = "vote"
    vote_iou: float = 0.4
    vote_score: Literal["max", "mean", "consensus"] = "consensus"

    def __post_init__(self) -> None:
        self.postprocess_config  # noqa: B018 -- validates the thresholds
        self.resize_policy  # noqa: B018
        if any(s < 16 for s in self.scales) or not 0 < self.vote_iou <= 1:
            raise ValueError(f"scales must be >= 16 pixels and vote_iou in (0, 1], got {self.scales}, {self.vote_iou}")
        if self.resize not in ("auto", "single"):
            raise ValueError(f"resize must be 'auto' or 'single', got {self.resize!r}")
        if self.orientations != "auto":
            angles = tuple(self.orientations)
            if not angles or any(a % 90 or not 0 <= a < 360 for a in angles) or len(set(angles)) != len(angles):
                raise ValueError(f"orientations must be distinct angles among 0, 90, 180, 270 or 'auto', got {angles}")
            object.__setattr__(self, "orientations", angles)
        if self.detail not in ("auto", 1, 4, 8) or isinstance(self.detail, bool):
            raise ValueError(f"detail must be 'auto', 1, 4 or 8, got {self.detail!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.batch_pixels < 1:
            raise ValueError(f"batch_pixels must be >= 1, got {self.batch_pixels}")

    @property
    def postprocess_config(self) -> PostprocessConfig:
        return PostprocessConfig(
            score_threshold=self.score_threshold,
            pre_nms_top_k=self.pre_nms_top_k,
            nms_threshold=self.nms_threshold,
            max_detections=self.max_detections,
        )

    @property
    def resize_policy(self) -> ResizePolicy:
        return ResizePolicy(short_side=self.short_side, max_side=self.max_side)

    @property
    def tta_config(self) -> TTAConfig:
        return TTAConfig(
            scales=tuple(self.scales),
            flip=self.flip,
            max_side=self.tta_max_side,
            merge=self.merge,
            vote_iou=self.vote_iou,
            vote_score=self.vote_score,
        )


class Detector:
    """RetinaFace face detector.

    >>> import skimage.data
    >>> detector = Detector()             # built-in model, ONNX Runtime, original size
    >>> photo = skimage.data.astronaut()  # or a path, a PIL image
    >>> faces = detector(photo, color="rgb")
    >>> len(faces), faces.landmarks.shape  # boxes (N, 4), scores (N,), landmarks (N, 5, 2)
    (1, (1, 5, 2))

    Keyword arguments are :class:`DetectorConfig` fields (``score_threshold=0.8``,
    ``max_side=1280``, ``backend="torch"`` ...). A ready backend may be passed instead of weights.
    """

    def __init__(
        self, config: DetectorConfig | None = None, *, backend_instance: Backend | None = None, **kwargs: object
    ) -> None:
        config = config or DetectorConfig()
        if kwargs:
            known = {f.name for f in fields(DetectorConfig)}
            unknown = sorted(set(kwargs) - known)
            if unknown:
                raise TypeError(f"unknown Detector option(s) {unknown}; known: {sorted(known)}")
            config = replace(config, **kwargs)  # type: ignore[arg-type]
        self.config = config
        #: the precision actually used (``auto`` resolved; an ONNX file's own for given weights)
        self.precision = resolve_precision(config.backend, config.weights, config.precision)
        self.backend: Backend = backend_instance or make_backend(
            config.backend,
            config.weights,
            model=config.model,
            device=config.device,
            threads=config.threads,
            precision=self.precision,
        )
        self.precision = getattr(self.backend, "precision", self.precision)
        self._post = config.postprocess_config
        self._resize = config.resize_policy
        self._tta = config.tta_config
        #: flip without scales at resize="auto": every pass of the ladder runs plain and mirrored, voted
        self._ladder_flip = config.flip and not config.scales and config.resize == "auto"
        #: images take the TTA passes (scales, or flip at resize="single"), not the size ladder
        self._tta_path = self._tta.enabled and not self._ladder_flip
        self._scales = ScaleConfig()

    def with_options(self, **changes: object) -> Detector:
        """A detector with these :class:`DetectorConfig` fields changed that shares this one's loaded model.

        >>> detector = Detector()
        >>> strict = detector.with_options(score_threshold=0.9)
        >>> strict.backend is detector.backend, strict.config.score_threshold
        (True, 0.9)
        """
        fixed = sorted(set(changes) & MODEL_FIELDS)
        if fixed:
            raise ValueError(f"with_options shares the loaded model, so {fixed} cannot change: build a new Detector")
        derived = Detector(self.config, backend_instance=self.backend, **changes)
        derived._scales = self._scales
        return derived

    @property
    def model_config(self) -> ModelConfig:
        return self.backend.config

    @property
    def model_info(self) -> ModelInfo:
        """Provenance and licence of the weights in use (see :class:`~retinakit.config.ModelInfo`).

        >>> Detector().model_info.licence
        'MIT'
        """
        return model_info_for(self.config.weights, self.model_config.name if self.config.weights else None)

    def __repr__(self) -> str:
        path = getattr(self.backend, "path", None) or self.config.weights or "built-in"
        layout = getattr(self.backend, "input_layout", "nchw_float")
        preprocessing = "in the graph" if layout == "nhwc_uint8" else "numpy"
        return (
            f"Detector(backend={self.config.backend!r}, precision={self.precision!r} "
            f"(asked {self.config.precision!r}), model={self.model_config.name!r}, weights={str(path)!r}, "
            f"preprocessing {preprocessing}, score_threshold={self.config.score_threshold})"
        )

    def __call__(self, image: ImageInput, color: ColorOrder | None = None) -> Faces:
        """Faces in one image: a path, a PIL image, or a numpy array (``color`` 'rgb' or 'bgr')."""
        return self.detect_bgr([to_bgr(image, color)])[0]

    @overload
    def detect_batch(
        self, images: Iterable[ImageInput], color: ColorOrder | None = None, errors: Literal["raise"] = "raise"
    ) -> list[Faces]: ...

    @overload
    def detect_batch(
        self, images: Iterable[ImageInput], color: ColorOrder | None = None, *, errors: Literal["return"]
    ) -> list[Faces | Exception]: ...

    def detect_batch(
        self,
        images: Iterable[ImageInput],
        color: ColorOrder | None = None,
        errors: Literal["raise", "return"] = "raise",
    ) -> list[Faces] | list[Faces | Exception]:
        """Faces for each image of a list (paths, PIL images, arrays, or a ``(B, H, W, C)`` array).

        Images are decoded ``batch_size`` at a time and run as :meth:`detect_bgr` does, so memory
        stays bounded however many images there are. ``errors="raise"`` (default): the first image
        that cannot be read or detected raises (:class:`~retinakit.ImageError` names it).
        ``errors="return"``: that image's exception takes its place in the list, the others are
        still detected. A single path, string or image is refused with ``TypeError`` (use
        ``detector(image)`` for one image).
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        if isinstance(images, (str, bytes, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim != 4):
            what = f"a {images.ndim}-D array" if isinstance(images, np.ndarray) else f"a single {type(images).__name__}"
            raise TypeError(f"detect_batch expects a list of images, got {what}; use detector(image) for one image")
        if hasattr(images, "convert") and hasattr(images, "size"):
            raise TypeError("detect_batch expects a list of images, got one PIL image; use detector(image)")
        results: list[Faces | Exception] = []
        for outcome in self.stream(images, color=color):
            if outcome.error is None:
                results.append(outcome.faces)  # type: ignore[arg-type]
            elif errors == "raise":
                cause = outcome.error.__cause__ if isinstance(outcome.error, DetectionError) else None
                raise cause or outcome.error
            else:
                results.append(outcome.error)  # type: ignore[arg-type]
        return results

    def stream(
        self,
        inputs: Iterable[T],
        read: Callable[[T], np.ndarray] | None = None,
        *,
        readahead: int = 4,
        color: ColorOrder | None = None,
    ) -> Iterator[Outcome[T]]:
        """Detect faces in every input of an iterable, yielding one :class:`Outcome` per input, in order.

        The one path every app uses (files, batch jobs, anonymization, video, the service):

        - ``read(item)`` turns an input into a BGR uint8 image (default: paths, PIL images and arrays
          as :meth:`__call__` takes them, ``color`` naming an array's channel order). With
          ``readahead`` > 0 it runs that many inputs ahead in a background thread, so decoding overlaps
          inference; an exception it raises becomes that input's error.
        - Consecutive images of one shape share a forward pass, at most ``batch_size`` images and
          ``batch_pixels`` network-input pixels (no padding, so each image's faces are those it gets alone).
        - A pass that fails is retried image by image: only the image that fails alone gets an error
          (:class:`~retinakit.errors.DetectionError`); the others of its pass are detected.

        Memory stays bounded however long the iterable is: at most ``readahead`` decoded images wait
        beside the pass being run.
        """
        if read is None:

            def read(item: T) -> np.ndarray:
                return to_bgr(item, color)

        assert read is not None
        decoded: Iterable[tuple[T, np.ndarray | BaseException]] = (
            prefetch(read, inputs, readahead) if readahead > 0 else (_read_inline(read, item) for item in inputs)
        )
        runs = same_shape_batches(
            decoded, _image_or_none, self.config.batch_size, self.config.batch_pixels, self.input_pixels
        )
        for run in runs:
            first = run[0][1]
            if isinstance(first, BaseException):  # runs of one: an input that could not be read
                yield Outcome(run[0][0], error=first)
                continue
            images: list[np.ndarray] = [image for _, image in run]  # type: ignore[misc]
            try:
                found: list[Faces | BaseException] = list(self.detect_bgr(images))
            except Exception:  # find the image that fails; the others keep their results
                found = [self._detect_alone(image) for image in images]
            for (item, _), image, faces in zip(run, images, found, strict=True):
                if isinstance(faces, BaseException):
                    yield Outcome(item, image, error=faces)
                else:
                    yield Outcome(item, image, faces)

    def _detect_alone(self, image: np.ndarray) -> Faces | DetectionError:
        try:
            return self.detect_bgr([image])[0]
        except Exception as exc:  # that image's outcome; the stream goes on
            error = DetectionError(f"detection failed: {exc}")
            error.__cause__ = exc
            return error

    def detect_bgr(self, images: Sequence[np.ndarray]) -> list[Faces]:
        """Faces for BGR uint8 ``(H, W, 3)`` arrays, in order.

        Memory rule: the images (after resizing) are sorted by size and grouped into forward passes
        of at most ``batch_size`` images and ``batch_pixels`` padded pixels, padding no image by
        more than a third of its area (:func:`~retinakit.inference.preprocess.plan_batches`); an
        image above the budget runs alone, needing the network's activations for that image only.
        A pass that fails for lack of memory is retried one image at a time; an image that alone
        does not fit raises ``MemoryError`` (set ``max_side`` to shrink large images). With TTA,
        each image runs its own passes.
        """
        if not images:
            return []
        if self.config.orientations != (0,):
            return [self._detect_oriented(image) for image in images]
        return self._detect_upright(images)

    def detail_scale(self, image: np.ndarray) -> int:
        """How many pixels of ``image`` (BGR array) one pixel of its detail spans, as this detector
        treats it: 1, 4 or 8 (:attr:`DetectorConfig.detail`, measured by
        :func:`~retinakit.inference.scales.detail_scale` when ``"auto"``; always 1 with TTA scales or
        ``resize="single"``, which do not use it).

        >>> Detector().detail_scale(np.zeros((480, 640, 3), np.uint8))  # below 2048 px: not measured
        1
        """
        if self._tta_path or self.config.resize != "auto":
            return 1
        if self.config.detail != "auto":
            return int(self.config.detail)
        return detail_scale(image, self._scales)

    def _detect_upright(self, images: Sequence[np.ndarray], details: Sequence[int] | None = None) -> list[Faces]:
        """:meth:`detect_bgr` without rotations: TTA, or the first pass (batched) plus the coarser passes.

        ``details``: each image's detail scale, when already known (a turned copy has its original's)."""
        if self._tta_path:
            threshold = self._post.score_threshold
            merged = [
                merge_passes(tta_passes(self, im, self._tta), self._tta, self._post.max_detections) for im in images
            ]
            return [faces[faces.scores >= threshold] for faces in merged]  # the threshold holds after voting too
        auto = self.config.resize == "auto"
        if details is None:
            details = [self.detail_scale(im) for im in images]
        batched = [i for i, detail in enumerate(details) if detail == 1]  # upscaled photos run on their own
        resized, frames = {}, {}
        for i in batched:
            resized[i], frames[i] = resize(images[i], self._resize)
        results = [Faces.empty()] * len(images)
        shapes = [resized[i].shape[:2] for i in batched]
        for group in plan_batches(shapes, self.config.batch_size, self.config.batch_pixels):
            members = [batched[j] for j in group]
            found = self._infer_or_split([resized[i] for i in members], [frames[i] for i in members])
            for i, faces in zip(members, found, strict=True):
                results[i] = faces
        if auto:
            results = [
                self._coarser_passes(im, faces, detail)
                for im, faces, detail in zip(images, results, details, strict=True)
            ]
        return results

    def _coarser_passes(self, image: np.ndarray, first: Faces, detail: int = 1) -> Faces:
        """``first`` (the first pass's faces) merged with the coarser passes a large image needs.

        ``detail`` > 1 (an upscaled photo, :func:`~retinakit.inference.scales.detail_scale`): ``first``
        is not run yet; the first pass runs at twice the detail scale and is checked against a view at
        the detail scale, faces too small at that scale to hold a face's detail are dropped, and the
        faces that view sees clearly and no pass returned are added
        (:func:`~retinakit.inference.scales.add_lone_faces`)."""
        h, w = image.shape[:2]
        factor = self._resize.scale(h, w)
        if detail > 1:
            factor = min(factor, 2.0 / detail)
            small, frame = resize_by(image, factor)
            first = self._infer_or_split([small], [frame])[0]
        factors = pass_factors(h, w, factor, self._scales)
        if len(factors) == 1 and detail == 1:
            return first
        # at the verification threshold: faint faces there confirm finer ones
        passes = [(factors[0], first), *((f, self._faint_pass(image, f)) for f in factors[1:])]
        rule = self._scales if detail > 1 else replace(self._scales, verify_size=self._scales.sharp_verify_size)
        evidence = None
        if detail > 1:  # a view at the detail scale confirms the first pass
            evidence = (factors[0] / 2, self._faint_pass(image, factors[0] / 2))
        elif needs_verification(factors, rule):  # a view at half size, around the faces it checks
            evidence = (factors[0] / 2, self._check_view(image, factors, first, rule))
        post = self._post
        merged = merge_scales(passes, rule, post.score_threshold, post.nms_threshold, post.max_detections, evidence)
        if detail > 1:
            merged = merged[np.maximum(merged.widths, merged.heights) >= self._scales.detail_face * detail]
            assert evidence is not None
            merged = add_lone_faces(merged, evidence, self._scales, post.score_threshold, post.max_detections)
        return merged

    def _check_view(self, image: np.ndarray, factors: Sequence[float], first: Faces, rule: ScaleConfig) -> Faces:
        """The faces a view at half the first pass's size sees around the first pass's faces it checks
        under ``rule`` (:func:`~retinakit.inference.scales.evidence_checks`; windows from
        :func:`~retinakit.inference.scales.check_windows`), or in the whole view."""
        h, w = image.shape[:2]
        factor = factors[0]
        size = np.maximum(first.widths, first.heights)
        checked = evidence_checks(size, factors, factor / 2, rule) & (size * factor < rule.keep_max)
        windows = check_windows(first.boxes[checked], factor / 2, h, w, rule)
        if windows is None:
            return self._faint_pass(image, factor / 2)
        parts = []
        for x0, y0, x1, y1 in windows:
            found = self._faint_pass(image[y0:y1, x0:x1], factor / 2)
            shift = np.array([x0, y0], dtype=found.boxes.dtype)
            parts.append(Faces(found.boxes + np.tile(shift, 2), found.scores, found.landmarks + shift))
        return Faces.merge(parts) if parts else Faces.empty()

    def _faint_pass(self, image: np.ndarray, factor: float) -> Faces:
        """One pass over ``image`` resized by ``factor``, keeping faces down to the verification score."""
        small, frame = resize_by(image, factor)
        return self._infer_or_split([small], [frame], self._evidence)[0]

    @property
    def _evidence(self) -> PostprocessConfig:
        """The coarser passes' postprocessing: faces down to the verification score (they serve as evidence)."""
        return replace(self._post, score_threshold=min(self._post.score_threshold, self._scales.verify_score))

    def _detect_oriented(self, image: np.ndarray) -> Faces:
        """Faces found with the image turned by each of the configured angles, mapped back and merged."""
        h, w = image.shape[:2]
        angles = (self.pick_orientation(image),) if self.config.orientations == "auto" else self.config.orientations
        detail = [self.detail_scale(image)]  # one photo, one detail scale, however it is turned
        parts = [
            faces_to_original(self._detect_upright([rotate_image(image, angle)], detail)[0], angle, h, w)
            for angle in angles
        ]
        return nms_merge(parts, self._post.nms_threshold, self._post.max_detections)

    def pick_orientation(self, image: np.ndarray, side: int = 640) -> int:
        """The angle (0, 90, 180 or 270) at which ``image`` looks upright: the one whose single pass, at
        most ``side`` pixels long, gives the largest sum of face scores above the threshold (0 on a tie)."""
        h, w = image.shape[:2]
        small, _ = resize_by(image, min(1.0, side / max(h, w)))
        best, best_score = 0, 0.0
        for angle in (0, 90, 180, 270):
            turned = rotate_image(small, angle)
            faces = self.infer([turned], [ImageFrame(*turned.shape[:2])])[0]
            score = float(faces.scores.sum())
            if score > best_score + 1e-6:
                best, best_score = angle, score
        return best

    def _infer_or_split(
        self, resized: Sequence[np.ndarray], frames: Sequence[ImageFrame], post: PostprocessConfig | None = None
    ) -> list[Faces]:
        """:meth:`infer`, retried one image at a time when the pass runs out of memory; with flip in the
        ladder (``flip=True`` without ``scales`` at ``resize="auto"``), each image plain and mirrored,
        merged as TTA merges (:func:`~retinakit.inference.tta.merge_passes`) and held to the threshold."""
        try:
            if self._ladder_flip:
                return [self._flipped(im, frame, post or self._post) for im, frame in zip(resized, frames, strict=True)]
            return self.infer(resized, frames, post)
        except Exception as exc:
            if not _out_of_memory(exc):
                raise
            if len(resized) == 1:
                h, w = resized[0].shape[:2]
                raise MemoryError(
                    f"not enough memory to detect on a {w}x{h} network input ({exc}); "
                    "set max_side (command line: --max-side) to shrink large images"
                ) from exc
        return [self._infer_or_split([im], [frame], post)[0] for im, frame in zip(resized, frames, strict=True)]

    def _flipped(self, resized: np.ndarray, frame: ImageFrame, post: PostprocessConfig) -> Faces:
        """One pass over ``resized`` and its mirror image (one forward pass of two), merged by the TTA rule."""
        mirrored = np.ascontiguousarray(resized[:, ::-1])
        try:
            plain, mirror = self.infer([resized, mirrored], [frame, frame], post)
        except Exception as exc:  # two views of a large image may not fit together: one at a time
            if not _out_of_memory(exc):
                raise
            plain, mirror = (self.infer([view], [frame], post)[0] for view in (resized, mirrored))
        merged = merge_passes([plain, flip_faces(mirror, frame.width)], self._tta, post.max_detections)
        return merged[merged.scores >= post.score_threshold]

    def infer(
        self, resized: Sequence[np.ndarray], frames: Sequence[ImageFrame], post: PostprocessConfig | None = None
    ) -> list[Faces]:
        """One forward pass over already resized BGR images; ``frames`` map results back to the originals.

        ``post``: the post-processing thresholds (default the detector's own).
        """
        if getattr(self.backend, "input_layout", "nchw_float") == "nhwc_uint8":
            batch = make_uint8_batch(resized, self.model_config.input)  # the graph normalises
            height, width = batch.shape[1:3]
        else:
            batch = make_batch(resized, self.model_config.input)
            height, width = batch.shape[2:4]
        return self.postprocess(self.backend(batch), height, width, frames, post)

    def input_pixels(self, image: np.ndarray) -> int:
        """Pixels of ``image`` once resized for the network (what :attr:`DetectorConfig.batch_pixels` counts)."""
        h, w = image.shape[:2]
        factor = self._resize.scale(h, w)
        return round(h * factor) * round(w * factor)

    @property
    def resize_policy(self) -> ResizePolicy:
        """How images are resized before the network when no TTA scales are set."""
        return self._resize

    def postprocess(
        self,
        raw: RawOutputs | DenseRawOutputs,
        height: int,
        width: int,
        frames: Sequence[ImageFrame],
        post: PostprocessConfig | None = None,
    ) -> list[Faces]:
        """Raw outputs of a ``height`` x ``width`` batch -> faces in each original image."""
        anchors = generate_anchors(self.model_config.anchors, height, width)
        decoder = getattr(self.backend, "decode_meshes", None) if dense_params_of(raw) is not None else None
        variances = self.model_config.anchors.variances
        return postprocess(raw, anchors, variances, frames, post or self._post, decoder)


def _read_inline(read: Callable[[T], np.ndarray], item: T) -> tuple[T, np.ndarray | BaseException]:
    try:
        return item, read(item)
    except Exception as exc:  # that input's outcome
        return item, exc


def _image_or_none(item: tuple[object, np.ndarray | BaseException]) -> np.ndarray | None:
    return None if isinstance(item[1], BaseException) else item[1]


def _out_of_memory(exc: BaseException) -> bool:
    """True for numpy's/Python's MemoryError and the allocation failures of ONNX Runtime, OpenCV, torch."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return "alloc" in text or "out of memory" in text or "insufficient memory" in text
