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


def gradient_errors(f, arrays, analytic, h=1e-6):
    """{name: relative error of analytic[name] against the central differences of
    the scalar f() with respect to arrays[name]}, each array perturbed in turn."""
    return {name: relative_error(analytic[name], numerical_gradient(f, x, h)) for name, x in arrays.items()}


def directional_error(f, x, analytic, direction, h=1e-6):
    """The relative error of the analytic derivative along one direction v,
    sum(analytic * v), against (f(x + h v) - f(x - h v)) / 2h: every entry of a
    large array checked at once, in two evaluations of f (x is restored)."""
    old = x.copy()
    x += h * direction
    f_plus = f()
    x[...] = old - h * direction
    f_minus = f()
    x[...] = old
    return relative_error(np.sum(analytic * direction), (f_plus - f_minus) / (2 * h))


def along(forward, x, t, h=1e-6):
    """(forward(x + h t) - forward(x - h t)) / 2h: a tangent (Jacobian-vector
    product J t) by central differences, to check a forward-mode pass."""
    return (forward(x + h * t) - forward(x - h * t)) / (2 * h)
