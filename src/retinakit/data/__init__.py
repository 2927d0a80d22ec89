"""Datasets: annotation parsing (and, for training, augmentation)."""
