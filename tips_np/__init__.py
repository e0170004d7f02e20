"""tips-np: unsupervised adversarial 2D-to-3D human pose lifting (TIPS and the
five 2D pose representations of Hardy, Dasmahapatra and Kim), written by hand
on NumPy, with CuPy kernels for the GPU.

nn/ the engine; method/ the papers' equations; io/ data and formats in and out;
tools/ the training loop, evaluation, studies, bench, machine tuning; at the top,
backend (NumPy or CuPy), errors, atomic (files written whole) and cli (the command
line). Each folder's __init__ says what it may import; tests/test_layout.py holds it."""
__version__ = "0.1.0"
