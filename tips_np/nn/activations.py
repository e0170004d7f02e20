"""Activations. Each forward returns its output y, which is also the cache its
backward needs (every derivative here can be written in terms of y).

Under each NumPy expression sits the fused CuPy kernel that replaces it on a GPU:
same maths, same names, and the same answer for NaN and infinity (a diverging run
must stop on either device). Contract of every kernel here: arrays of one shape
(CuPy launches them flat), float32 or float64 (T); slope is a scalar of type T.
tests/test_kernels.py compares the two on a GPU; tests/test_kernel_compile.py
compiles every kernel without one.
"""
import numpy as np

from ..backend import elementwise, on_gpu

LEAKY_SLOPE = 0.2


def relu_forward(x):
    if on_gpu(x):
        return relu_forward_kernel(x)
    return np.maximum(x, 0)


# as np.maximum(x, 0): NaN stays NaN (x > 0 ? x : 0 alone would give 0) and -0 gives +0 (x < 0 ? 0 : x would keep -0)
relu_forward_kernel = elementwise("T x", "T y", "y = (x > (T)0 || isnan(x)) ? x : (T)0", "relu_forward")


def relu_backward(dy, y):
    if on_gpu(dy):
        return relu_backward_kernel(dy, y)
    return dy * (y > 0)


# dy times a 0/1 mask, as NumPy: a NaN or infinite dy where y <= 0 gives NaN, not 0
relu_backward_kernel = elementwise(
    "T dy, T y", "T dx", "dx = dy * (y > (T)0 ? (T)1 : (T)0)", "relu_backward")


def leaky_relu_forward(x, slope=LEAKY_SLOPE):
    if on_gpu(x):
        return leaky_relu_forward_kernel(x, x.dtype.type(slope))
    return np.maximum(x, x * x.dtype.type(slope))  # = x if x > 0 else slope x, for 0 < slope < 1


leaky_relu_forward_kernel = elementwise(
    "T x, T slope", "T y", "y = x > (T)0 ? x : x * slope", "leaky_relu_forward", scalars=("slope",))


def leaky_relu_backward(dy, y, slope=LEAKY_SLOPE):
    if on_gpu(dy):
        return leaky_relu_backward_kernel(dy, y, dy.dtype.type(slope))
    t = dy.dtype.type
    return dy * ((y > 0) * t(1 - slope) + t(slope))  # derivative: 1 where y > 0, else slope


leaky_relu_backward_kernel = elementwise(
    "T dy, T y, T slope", "T dx", "dx = y > (T)0 ? dy : dy * slope", "leaky_relu_backward", scalars=("slope",))


def tanh_forward(x):
    return np.tanh(x) if not on_gpu(x) else tanh_forward_kernel(x)


tanh_forward_kernel = elementwise("T x", "T y", "y = tanh(x)", "tanh_forward")


def tanh_backward(dy, y):
    if on_gpu(dy):
        return tanh_backward_kernel(dy, y)
    return dy * (1 - y * y)  # d tanh = 1 - tanh^2


tanh_backward_kernel = elementwise("T dy, T y", "T dx", "dx = dy * ((T)1 - y * y)", "tanh_backward")


def sigmoid_forward(x):
    if on_gpu(x):
        return sigmoid_forward_kernel(x)
    # 1 / (1 + e^-x) without overflow: e^-|x| never exceeds 1
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


sigmoid_forward_kernel = elementwise(
    "T x", "T y",
    "T e = exp(-fabs(x)); y = x >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e)",
    "sigmoid_forward")


def sigmoid_backward(dy, y):
    if on_gpu(dy):
        return sigmoid_backward_kernel(dy, y)
    return dy * y * (1 - y)  # d sigmoid = s (1 - s)


sigmoid_backward_kernel = elementwise(
    "T dy, T y", "T dx", "dx = dy * y * ((T)1 - y)", "sigmoid_backward")


# Forward mode. The tangent of y = f(h) along t_h is t_y = f'(h) t_h, with f'
# written in y as the backwards are. The dual backward returns the gradient of t_h
# and the extra gradient of y that t_y's dependence on y adds (None where f' is
# piecewise constant); the caller passes that extra through f's own backward.

def relu_tangent(t, y):
    return t * (y > 0)


def relu_tangent_backward(dt_y, t, y):
    return dt_y * (y > 0), None


def leaky_relu_tangent(t, y, slope=LEAKY_SLOPE):
    return leaky_relu_backward(t, y, slope)  # the same slope times t


def leaky_relu_tangent_backward(dt_y, t, y, slope=LEAKY_SLOPE):
    return leaky_relu_backward(dt_y, y, slope), None


def tanh_tangent(t, y):
    return t * (1 - y * y)                         # t_y = (1 - y^2) t_h


def tanh_tangent_backward(dt_y, t, y):
    return dt_y * (1 - y * y), -2 * y * t * dt_y   # d t_y / d y = -2 y t_h


TANGENTS = {
    "relu": (relu_tangent, relu_tangent_backward),
    "leaky_relu": (leaky_relu_tangent, leaky_relu_tangent_backward),
    "tanh": (tanh_tangent, tanh_tangent_backward),
}


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}
