"""tips-np: unsupervised adversarial 2D-to-3D human pose lifting (TIPS and the
five 2D pose representations of Hardy, Dasmahapatra and Kim), written by hand
on NumPy, with CuPy kernels for the GPU."""
import os
import sys

# Before NumPy loads OpenBLAS: its idle threads sleep after 2^16 cycles (about 20 us)
# instead of spinning for 2^28 (0.1 s) after each product, which the groups on their
# own cores need (cores.py)
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

__version__ = "0.1.0"
