"""Public checkpoint layouts, renamed onto this implementation's parameter names.

A *layout* is the naming scheme of a state dict: which key holds which tensor (``ClassHead.0.conv1x1.weight``
in one project, ``class_head.class_head.0.weight`` in another, ``heads.cls.0.weight`` here). Each module
here describes one layout by its keys and offers the same three functions:

- ``matches(state)``: whether a state dict is in that layout;
- ``rename(state)``: the same tensors under this implementation's names (then loaded strictly);
- ``guess_config(state)``: the model preset its keys and shapes tell, for files that carry no config.

:mod:`~retinakit.models.layouts.body_classhead`: ``body.`` / ``ClassHead.`` keys (biubug6/Pytorch_Retinaface
and the many ports that reuse it). :mod:`~retinakit.models.layouts.fx_class_head`: ``fx.`` / ``class_head.``
keys (yakhyo/retinaface-pytorch).
"""
