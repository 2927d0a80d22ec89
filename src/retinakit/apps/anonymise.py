"""The module's name in earlier releases: :mod:`retinakit.apps.anonymize`, kept for one release."""

from retinakit.apps.anonymize import (  # noqa: F401
    DEFAULT_THRESHOLD,
    anonymise_paths,
    anonymise_video,
    anonymize_paths,
    anonymize_video,
    list_inputs,
    write_still,
)
