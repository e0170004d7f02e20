"""The unit every network here is made of: Linear -> BatchNorm -> activation
[-> dropout], as in Martinez et al. Parameters live in one flat dict keyed by
path, e.g. 'G/torso/block0/fc1/W' and 'G/torso/block0/bn1/gamma'.
"""
from .activations import ACTIVATIONS
from .batchnorm import batchnorm_backward, batchnorm_forward
from .dropout import dropout_backward, dropout_forward
from .linear import linear_backward, linear_forward


def accumulate(grads, prefix, layer_grads):
    """Add a layer's parameter gradients into grads under prefix/name. A network
    called several times in one step receives the sum over its calls."""
    for k, g in layer_grads.items():
        name = f"{prefix}/{k}"
        if name in grads:
            grads[name] += g
        else:
            grads[name] = g


def bn_state(state, bn):
    """The running statistics of batch-norm layer `bn`, or None (no update)."""
    if state is None:
        return None
    return {"running_mean": state[f"{bn}/running_mean"], "running_var": state[f"{bn}/running_var"]}


def dense_forward(params, fc, bn, x, activation, train=True, state=None, mask=None):
    h, c_fc = linear_forward(x, params[f"{fc}/W"])  # no bias: the batch-norm removes it
    h, c_bn = batchnorm_forward(h, params[f"{bn}/gamma"], params[f"{bn}/beta"],
                                bn_state(state, bn), train)
    y = ACTIVATIONS[activation][0](h)
    out = y if mask is None else dropout_forward(y, mask)[0]
    return out, (fc, bn, c_fc, c_bn, activation, y, mask)


def dense_backward(dout, cache, grads=None):
    """Return dx; add parameter gradients into grads (skipped when grads is None)."""
    fc, bn, c_fc, c_bn, activation, y, mask = cache
    dy = dout if mask is None else dropout_backward(dout, mask)
    dh = ACTIVATIONS[activation][1](dy, y)
    need = grads is not None
    dh, g_bn = batchnorm_backward(dh, c_bn, need)
    dx, g_fc = linear_backward(dh, c_fc, need)
    if need:
        accumulate(grads, bn, g_bn)
        accumulate(grads, fc, g_fc)
    return dx
