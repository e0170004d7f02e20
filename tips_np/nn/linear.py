"""Fully connected layer  y = x W + b  (x: (N, d_in), W: (d_in, d_out)).

Forward mode: along an input tangent t (a direction of change of x), y changes by
t W. The dual backward takes gradients of both y and its tangent t_y.

A Linear that feeds a batch-norm has no bias: the batch-norm subtracts the batch
mean, so such a bias would have a zero gradient and never leave its initial 0.

Every product goes through matmul(a, b), which is a @ b (cuBLAS on CuPy) unless
bench.py has set matmul_hook to time the products of its instrumented steps.
"""
import numpy as np

matmul_hook = None  # bench.time_matmuls: called as matmul_hook(a, b) for every product (it returns a @ b)


def matmul(a, b):
    return a @ b if matmul_hook is None else matmul_hook(a, b)


def linear_init(rng, d_in, d_out, dtype=np.float32, bias=True):
    """Kaiming/He initialisation as in Martinez et al.: W ~ N(0, 2 / d_in), b = 0."""
    W = rng.standard_normal((d_in, d_out)) * np.sqrt(2.0 / d_in)
    return {"W": W.astype(dtype), **({"b": np.zeros(d_out, dtype)} if bias else {})}


def linear_forward(x, W, b=None):
    y = matmul(x, W)
    if b is not None:
        y += b
    return y, (x, W, b is not None)


def linear_backward(dy, cache, need_param_grads=True):
    """Return dx and, if asked, {'W': dW[, 'b': db]}."""
    x, W, has_bias = cache
    dx = matmul(dy, W.T)
    if not need_param_grads:
        return dx, None
    return dx, {"W": matmul(x.T, dy), **({"b": dy.sum(axis=0)} if has_bias else {})}


def linear_tangent(t, cache):
    """The tangent of y along the input tangent t:  t_y = t W."""
    return matmul(t, cache[1])


def linear_dual_backward(dy, dt_y, cache, t):
    """Backward of (y, t_y): returns dx, dt and {'W': x^T dy + t^T dt_y[, 'b': sum dy]}."""
    x, W, has_bias = cache
    grads = {"W": matmul(x.T, dy) + matmul(t.T, dt_y), **({"b": dy.sum(axis=0)} if has_bias else {})}
    return matmul(dy, W.T), matmul(dt_y, W.T), grads
