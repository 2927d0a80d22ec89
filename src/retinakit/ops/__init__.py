"""Pure operations on arrays: face alignment (:mod:`~retinakit.ops.align`) and the anonymization masks
(:mod:`~retinakit.ops.masks`). They take images, boxes and landmarks, never a detector, so the result
type's convenience methods (``Faces.align``, ``Faces.anonymize``) call downward only."""
