"""Fully connected layer  y = x W + b  (x: (N, d_in), W: (d_in, d_out)).

A Linear that feeds a batch-norm has no bias: the batch-norm subtracts the batch
mean, so such a bias would have a zero gradient and never leave its initial 0.
"""
import numpy as np


def linear_init(rng, d_in, d_out, dtype=np.float32, bias=True):
    """Kaiming/He initialisation as in Martinez et al.: W ~ N(0, 2 / d_in), b = 0."""
    W = rng.standard_normal((d_in, d_out)) * np.sqrt(2.0 / d_in)
    return {"W": W.astype(dtype), **({"b": np.zeros(d_out, dtype)} if bias else {})}


def linear_forward(x, W, b=None):
    y = x @ W  # cuBLAS on CuPy
    if b is not None:
        y += b
    return y, (x, W, b is not None)


def linear_backward(dy, cache, need_param_grads=True):
    """Return dx and, if asked, {'W': dW[, 'b': db]}."""
    x, W, has_bias = cache
    dx = dy @ W.T
    if not need_param_grads:
        return dx, None
    return dx, {"W": x.T @ dy, **({"b": dy.sum(axis=0)} if has_bias else {})}
