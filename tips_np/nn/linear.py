"""Fully connected layer  y = x W + b  (x: (N, d_in), W: (d_in, d_out))."""
import numpy as np


def linear_init(rng, d_in, d_out, dtype=np.float32):
    """Kaiming/He initialisation as in Martinez et al.: W ~ N(0, 2 / d_in), b = 0."""
    W = rng.standard_normal((d_in, d_out)) * np.sqrt(2.0 / d_in)
    return {"W": W.astype(dtype), "b": np.zeros(d_out, dtype)}


def linear_forward(x, W, b):
    y = x @ W  # cuBLAS on CuPy
    y += b
    return y, (x, W)


def linear_backward(dy, cache, need_param_grads=True):
    """Return dx and, if asked, {'W': dW, 'b': db}."""
    x, W = cache
    dx = dy @ W.T
    if not need_param_grads:
        return dx, None
    return dx, {"W": x.T @ dy, "b": dy.sum(axis=0)}
