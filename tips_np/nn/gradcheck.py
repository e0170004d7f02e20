"""Gradient checking by central differences, in float64.

    df/dx_i  ~  (f(x + h e_i) - f(x - h e_i)) / 2h

A backward pass is right when the analytic gradient matches this to a relative
error  |a - n| / (|a| + |n|)  far below what a wrong sign or a missing term gives.
"""
import numpy as np


def numerical_gradient(f, x, h=1e-6):
    """Central-difference gradient of the scalar f() with respect to array x,
    which f reads and which is perturbed in place (and restored)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


ZERO = 1e-6  # below this norm a gradient counts as zero (round-off of central differences)


def relative_error(analytic, numeric):
    """Norm-wise relative error ||a - n|| / (||a|| + ||n||).

    Where the true gradient vanishes (e.g. the bias of a Linear that feeds a
    batch-norm, which removes any shift) a ratio of two round-off-sized numbers
    means nothing: then the absolute error ||a - n|| is returned, which is still
    large when the analytic gradient is wrongly non-zero.
    """
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    diff = np.linalg.norm(a - n)
    if np.linalg.norm(n) < ZERO:
        return float(diff)
    return float(diff / (np.linalg.norm(a) + np.linalg.norm(n)))
