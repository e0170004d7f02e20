"""Batch normalisation over the batch axis of (N, D) features.

Training mode normalises with the batch's own mean and (biased) variance:
    x_hat = (x - mean) / sqrt(var + eps),   y = gamma * x_hat + beta.
Evaluation mode uses running estimates instead. Convention (PyTorch's):
    running = (1 - momentum) * running + momentum * batch_estimate,
with momentum 0.1 and the unbiased batch variance N / (N - 1) * var in running_var.
A network is called several times per training step on different inputs; the
caller decides which calls update the running statistics (see nn/mlp.py).

Under each NumPy expression sits the fused CuPy kernel that replaces it on a GPU.
Contract of every kernel here: x, dy, x_hat, y are (N, D), or (slices, n, D) for a
stacked call; mean, inv_std, gamma, beta, scale, mean_dy, mean_dy_xhat are (D,),
(1, D) or (slices, 1, D), broadcast over the batch; the reductions run over the
batch axis (0, or 1 of a stacked call) and give (D,) or (slices, D); float32 or
float64 (T).
"""
import numpy as np

from ..backend import elementwise, get_array_module, on_gpu, reduction

EPS = 1e-5
MOMENTUM = 0.1


def batchnorm_init(d, dtype=np.float32):
    params = {"gamma": np.ones(d, dtype), "beta": np.zeros(d, dtype)}
    state = {"running_mean": np.zeros(d, dtype), "running_var": np.ones(d, dtype)}
    return params, state


def batchnorm_forward(x, gamma, beta, state=None, train=True, slices=1):
    """Return y and the cache for batchnorm_backward.

    train=True: batch statistics; if `state` is given, its running statistics are
    updated in place. train=False: normalise with state's running statistics.
    slices > 1 (training, no state): x is that many batches stacked along the
    batch axis (several calls of one network run as one), each normalised with its
    own statistics: the same maths as one call per slice, in fewer and larger passes.
    """
    xp = get_array_module(x)
    if slices > 1:
        assert train and state is None, "stacked calls use their own batch statistics and update none"
        x = x.reshape(slices, -1, x.shape[-1])     # (slices, n, D): the batch axis is -2 throughout
    n = x.shape[-2]
    mean = x.mean(axis=-2, keepdims=True) if train else state["running_mean"]
    if on_gpu(x):
        var = batchnorm_variance_kernel(x, mean, axis=x.ndim - 2) if train else state["running_var"]
        inv_std = 1 / xp.sqrt(var + EPS)
        y, x_hat = batchnorm_forward_kernel(x, mean, inv_std[..., None, :], gamma, beta)
    else:
        # the same maths in as few passes over the (N, D) array as NumPy allows
        x_hat = x - mean
        var = np.einsum("...ij,...ij->...j", x_hat, x_hat) / n if train else state["running_var"]
        inv_std = 1 / np.sqrt(var + EPS)  # (D,), or (slices, D)
        x_hat *= inv_std[..., None, :]   # x_hat = (x - mean) / sqrt(var + eps)
        y = x_hat * gamma
        y += beta                        # y = gamma x_hat + beta
    if train and state is not None:
        update_running_statistics(state, mean[0], var, n)
    return y.reshape(-1, y.shape[-1]), (x_hat, gamma, inv_std, train)


batchnorm_variance_kernel = reduction(  # mean over the batch of (x - mean)^2, no temporary
    "T x, T mean", "T var", "(x - mean) * (x - mean)", "a + b",
    "var = a / (_in_ind.size() / _out_ind.size())", "0", "batchnorm_variance")

batchnorm_forward_kernel = elementwise(
    "T x, T mean, T inv_std, T gamma, T beta", "T y, T x_hat",
    "x_hat = (x - mean) * inv_std; y = gamma * x_hat + beta",
    "batchnorm_forward", ndim=2)


def update_running_statistics(state, mean, var, n, momentum=MOMENTUM):
    """running = (1 - momentum) running + momentum batch estimate, with the batch's (of n)
    unbiased variance n / (n - 1) var."""
    var_unbiased = var * (n / max(n - 1, 1))
    state["running_mean"] *= 1 - momentum
    state["running_mean"] += momentum * mean
    state["running_var"] *= 1 - momentum
    state["running_var"] += momentum * var_unbiased


def batchnorm_backward(dy, cache, need_param_grads=True):
    """Return dx and {'gamma': dgamma, 'beta': dbeta}.

    With batch statistics the mean and variance depend on x, which gives
        dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
    the means over each slice's own batch. With running statistics they are
    constants: dx = gamma * inv_std * dy. gamma and beta get the sums over all slices.
    """
    x_hat, gamma, inv_std, train = cache
    xp = get_array_module(dy)
    dy = dy.reshape(x_hat.shape)           # (slices, n, D) for a stacked call, else (N, D)
    n = dy.shape[-2]
    dbeta = dy.sum(axis=-2)
    if on_gpu(dy):
        dgamma = batchnorm_dgamma_kernel(dy, x_hat, axis=dy.ndim - 2)
    else:
        dgamma = xp.einsum("...ij,...ij->...j", dy, x_hat)   # sum over the batch of dy * x_hat
    if not train:
        dx = dy * (gamma * inv_std)
    elif on_gpu(dy):
        dx = batchnorm_backward_kernel(dy, x_hat, gamma * inv_std[..., None, :], dbeta[..., None, :] / n,
                                       dgamma[..., None, :] / n)
    else:
        dx = x_hat * (-dgamma[..., None, :] / n)  # dx = gamma inv_std (dy - mean(dy) - x_hat mean(dy x_hat))
        dx -= dbeta[..., None, :] / n
        dx += dy
        dx *= gamma * inv_std[..., None, :]
    if dy.ndim == 3:                       # a stacked call: its slices' gradients add up
        dbeta, dgamma = dbeta.sum(axis=0), dgamma.sum(axis=0)
    return dx.reshape(-1, dx.shape[-1]), ({"gamma": dgamma, "beta": dbeta} if need_param_grads else None)


def batchnorm_tangent(t, cache):
    """Forward mode along the input tangent t (N, D). With batch statistics the
    mean and variance move with the whole batch, which gives the same projection
    as the backward:
        t_y = gamma inv_std (t - mean(t) - x_hat mean(x_hat t));
    with running statistics t_y = gamma inv_std t."""
    x_hat, gamma, inv_std, train = cache
    if not train:
        return t * (gamma * inv_std)
    return (t - t.mean(axis=0) - x_hat * (x_hat * t).mean(axis=0)) * (gamma * inv_std)


def batchnorm_dual_backward(dy, dt_y, cache, t):
    """Backward of (y, t_y) (batch statistics): returns dx, dt and the parameters'
    gradients. t_y also depends on x, through x_hat and sigma = 1 / inv_std: with
    F = sum(dt_y t_y), a = mean(x_hat t), b = mean(x_hat dt_y) (per feature),
        dF/dx_hat = -gamma inv_std (a dt_y + b t),   dF/dsigma = -F / sigma,
    and x_hat, sigma -> x as in the backward (dsigma / dx = x_hat / N)."""
    x_hat, gamma, inv_std, train = cache
    if not train:
        dx, grads = batchnorm_backward(dy, cache)
        grads["gamma"] += (dt_y * t).sum(axis=0) * inv_std
        return dx, dt_y * (gamma * inv_std), grads
    n = t.shape[0]
    a, b = (x_hat * t).mean(axis=0), (x_hat * dt_y).mean(axis=0)
    projected = t - t.mean(axis=0) - x_hat * a                        # t_y = gamma inv_std projected
    dt = (dt_y - dt_y.mean(axis=0) - x_hat * b) * (gamma * inv_std)   # the projection is symmetric
    d_x_hat = gamma * dy - (gamma * inv_std) * (a * dt_y + b * t)
    d_sigma = -inv_std * (gamma * inv_std) * (dt_y * projected).sum(axis=0)
    dx = inv_std * (d_x_hat - d_x_hat.mean(axis=0) - x_hat * (d_x_hat * x_hat).mean(axis=0)) + d_sigma * x_hat / n
    grads = {"gamma": (dy * x_hat).sum(axis=0) + (dt_y * projected).sum(axis=0) * inv_std,
             "beta": dy.sum(axis=0)}
    return dx, dt, grads


batchnorm_dgamma_kernel = reduction(  # sum over the batch of dy * x_hat, no temporary
    "T dy, T x_hat", "T dgamma", "dy * x_hat", "a + b", "dgamma = a", "0", "batchnorm_dgamma")

batchnorm_backward_kernel = elementwise(
    "T dy, T x_hat, T scale, T mean_dy, T mean_dy_xhat", "T dx",
    "dx = scale * (dy - mean_dy - x_hat * mean_dy_xhat)",
    "batchnorm_backward", ndim=2)
