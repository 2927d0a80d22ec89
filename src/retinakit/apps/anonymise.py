"""The module's name in earlier releases: :mod:`retinakit.apps.anonymize` (the job) and
:mod:`retinakit.ops.masks` (the masks), kept for one release."""

from retinakit.apps.anonymize import (  # noqa: F401
    DEFAULT_THRESHOLD,
    anonymise_paths,
    anonymise_video,
    anonymize_paths,
    anonymize_video,
    list_inputs,
    write_still,
)
from retinakit.ops.masks import (  # noqa: F401
    AnonymiseConfig,
    AnonymizeConfig,
    anonymise_image,
    anonymize_image,
    face_regions,
    hide_mask,
)
