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


def relative_error(analytic, numeric):
    """Norm-wise relative error ||a - n|| / (||a|| + ||n||), 0 when both vanish."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)
