"""The engine: hand-written layers, each forward returning the cache its backward
consumes (linear, batchnorm, activations, dropout, dense, residual, mlp), forward mode
(*_tangent, *_dual_backward), Adam and the gradient checker.

May import only backend, errors and other modules of nn/ (tests/test_layout.py): nothing
of the method, data or tools.
"""
