"""The dense unit's batch-norm and activation, fused on the CPU (nn/dense.py).

NumPy makes one pass over memory per operation, so batch-norm followed by ReLU
(nn/batchnorm.py, nn/activations.py) passes over the (N, D) array seven times
forward and eight times backward. Where numba is installed (backend.cpu_kernels),
a dense unit in training runs them as the kernels below: the forward in three
passes (NumPy's mean, the variance, then x_hat and the activation's output written
together), the backward in two (the sums, then dx). Each kernel does the NumPy
lines' operations in their order, in the arrays' own precision, and adds up the
batch row after row as NumPy does along axis 0: the numbers, the caches and the
gradients are NumPy's bit for bit (tests/test_cpu_kernels.py), so the two paths
can be mixed freely. Arrays are (slices, n, D) (slices = 1 for a plain call), the
statistics (slices, D).
"""
import numpy as np

from ..backend import cpu_kernel, cpu_kernels, on_gpu
from .activations import LEAKY_SLOPE
from .batchnorm import EPS, update_running_statistics

SLOPES = {"relu": None, "leaky_relu": LEAKY_SLOPE}   # the activations fused here


def fused(h, activation, train, mask):
    """Whether a dense unit's batch-norm and activation on h run fused: on the CPU with
    numba, in training, with a fused activation and no dropout, and D > 1 (NumPy adds a
    single column up otherwise than row after row)."""
    return (train and mask is None and activation in SLOPES and h.shape[-1] > 1
            and not on_gpu(h) and cpu_kernels())


def bn_activation_forward(x, gamma, beta, activation, state=None, slices=1):
    """batchnorm_forward(x, ..., train=True) and the activation: (output, batch-norm cache)."""
    d = x.shape[-1]
    x3 = x.reshape(slices, -1, d)
    n = x3.shape[1]
    mean = x3.mean(axis=1)                                 # (slices, D), as batchnorm_forward's
    var = variance_cpu(x3, mean) / n
    inv_std = 1 / np.sqrt(var + EPS)
    x_hat, y = np.empty_like(x3), np.empty_like(x3)
    slope = SLOPES[activation]
    forward_cpu(x3, mean, inv_std, gamma, beta, slope is not None, x.dtype.type(slope or 0), x_hat, y)
    if state is not None:
        update_running_statistics(state, mean[0], var[0], n)
    if slices == 1:
        x_hat, inv_std = x_hat[0], inv_std[0]
    return y.reshape(-1, d), (x_hat, gamma, inv_std, True)


@cpu_kernel
def variance_cpu(x, mean):
    """The sum over the batch of (x - mean)^2: the einsum of x_hat = x - mean with itself."""
    var = np.zeros(mean.shape, x.dtype)
    for k in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                c = x[k, i, j] - mean[k, j]
                var[k, j] += c * c
    return var


@cpu_kernel
def forward_cpu(x, mean, inv_std, gamma, beta, leaky, slope, x_hat, y):
    zero = x.dtype.type(0)
    for k in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                h = (x[k, i, j] - mean[k, j]) * inv_std[k, j]   # x_hat = (x - mean) / sqrt(var + eps)
                x_hat[k, i, j] = h
                a = h * gamma[j] + beta[j]                     # gamma x_hat + beta
                if leaky:                                      # np.maximum(a, slope a)
                    b = a * slope
                    y[k, i, j] = a if a >= b else b
                else:                                          # np.maximum(a, 0): NaN stays, -0 gives +0
                    y[k, i, j] = a if (a > 0 or a != a) else zero


def bn_activation_backward(dy, y, cache, activation, need_param_grads=True):
    """The activation's backward, then batchnorm_backward (train=True): (dx, grads)."""
    x_hat, gamma, inv_std, _ = cache
    d = dy.shape[-1]
    slices = 1 if x_hat.ndim == 2 else x_hat.shape[0]
    dy3, y3, x_hat3 = (a.reshape(slices, -1, d) for a in (dy, y, x_hat))
    n = x_hat3.shape[1]
    t, slope = dy.dtype.type, SLOPES[activation]
    # the activation's derivative where y > 0 and where not, each as NumPy rounds it
    above, below = (t(1), t(0)) if slope is None else (t(1 - slope) + t(slope), t(0) + t(slope))
    dbeta, dgamma = sums_cpu(dy3, y3, x_hat3, above, below)
    inv_std = inv_std.reshape(slices, d)
    dx = np.empty_like(dy3)
    backward_cpu(dy3, y3, x_hat3, above, below, gamma * inv_std, dbeta / n, -dgamma / n, dx)
    if slices > 1:                         # a stacked call: its slices' gradients add up
        dbeta, dgamma = dbeta.sum(axis=0), dgamma.sum(axis=0)
    else:
        dbeta, dgamma = dbeta[0], dgamma[0]
    return dx.reshape(-1, d), ({"gamma": dgamma, "beta": dbeta} if need_param_grads else None)


@cpu_kernel
def sums_cpu(dy, y, x_hat, above, below):
    """dbeta and dgamma: the sums over the batch of g and of g x_hat, g the activation's backward."""
    dbeta = np.zeros((dy.shape[0], dy.shape[2]), dy.dtype)
    dgamma = np.zeros((dy.shape[0], dy.shape[2]), dy.dtype)
    for k in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                g = dy[k, i, j] * (above if y[k, i, j] > 0 else below)
                dbeta[k, j] += g
                dgamma[k, j] += g * x_hat[k, i, j]
    return dbeta, dgamma


@cpu_kernel
def backward_cpu(dy, y, x_hat, above, below, scale, mean_g, minus_mean_g_xhat, dx):
    for k in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                g = dy[k, i, j] * (above if y[k, i, j] > 0 else below)
                # dx = gamma inv_std (g - mean(g) - x_hat mean(g x_hat)), in the NumPy lines' order
                dx[k, i, j] = ((x_hat[k, i, j] * minus_mean_g_xhat[k, j] - mean_g[k, j]) + g) * scale[k, j]
