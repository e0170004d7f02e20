"""tips-np: unsupervised adversarial 2D-to-3D human pose lifting (TIPS and the
five 2D pose representations of Hardy, Dasmahapatra and Kim), written by hand
on NumPy, with CuPy kernels for the GPU."""
__version__ = "0.1.0"
