"""Torch-matching building blocks shared by all three papers, each numeric written once here and imported
everywhere: layers with PyTorch's initialisation and padding and `conv_transpose2d` (layers), BatchNorm /
spectral-norm mechanics (normalization), bilinear and nearest resizing (resize), pad-to-modulo
(padding), NCHW/NHWC and torch/Flax kernel layouts (layout), parameter counts and abstract init (params)."""
