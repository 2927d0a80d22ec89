"""Training (needs the ``torch`` extra): matching, loss, augmentation, dataset and the training loop.

Importing this package does not import PyTorch; its modules do.
"""
