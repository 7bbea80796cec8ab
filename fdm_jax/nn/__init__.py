"""Torch-matching building blocks shared by all three papers: layers with PyTorch's initialisation
and padding (layers), BatchNorm / spectral-norm mechanics (normalization)."""
