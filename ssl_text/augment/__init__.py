"""Offline text augmentation (precomputed views for consistency regularization)."""
