"""The engine: hand-written layers, each forward returning the cache its backward
consumes (linear, batchnorm, activations, dropout, dense, residual, mlp), forward mode
(*_tangent, *_dual_backward), Adam and the gradient checker; fused: a dense unit's
batch-norm and activation compiled on the CPU where numba is installed (NumPy's numbers).

May import only backend, errors and other modules of nn/ (tests/test_layout.py): nothing
of the method, data or tools.
"""
