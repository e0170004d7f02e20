"""The unit every network here is made of: Linear -> BatchNorm -> activation
[-> dropout], as in Martinez et al. Parameters live in one flat dict keyed by
path, e.g. 'G/torso/block0/fc1/W' and 'G/torso/block0/bn1/gamma'.
"""
from .activations import ACTIVATIONS, TANGENTS
from .batchnorm import batchnorm_backward, batchnorm_dual_backward, batchnorm_forward, batchnorm_tangent
from .dropout import dropout_backward, dropout_forward, dropout_tangent
from .fused import bn_activation_backward, bn_activation_forward, fused
from .linear import linear_backward, linear_dual_backward, linear_forward, linear_tangent


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


def dense_forward(params, fc, bn, x, activation, train=True, state=None, mask=None, slices=1):
    h, c_fc = linear_forward(x, params[f"{fc}/W"])  # no bias: the batch-norm removes it
    if fused(h, activation, train, mask):        # the two lines below in three passes (nn/fused.py)
        y, c_bn = bn_activation_forward(h, params[f"{bn}/gamma"], params[f"{bn}/beta"], activation,
                                        bn_state(state, bn), slices)
    else:
        h, c_bn = batchnorm_forward(h, params[f"{bn}/gamma"], params[f"{bn}/beta"],
                                    bn_state(state, bn), train, slices)
        y = ACTIVATIONS[activation][0](h)
    out = y if mask is None else dropout_forward(y, mask)[0]
    return out, (fc, bn, c_fc, c_bn, activation, y, mask)


def dense_backward(dout, cache, grads=None):
    """Return dx; add parameter gradients into grads (skipped when grads is None)."""
    fc, bn, c_fc, c_bn, activation, y, mask = cache
    dy = dout if mask is None else dropout_backward(dout, mask)
    need = grads is not None
    if fused(dy, activation, c_bn[3], mask):      # the two lines below in two passes (nn/fused.py)
        dh, g_bn = bn_activation_backward(dy, y, c_bn, activation, need)
    else:
        dh = ACTIVATIONS[activation][1](dy, y)
        dh, g_bn = batchnorm_backward(dh, c_bn, need)
    dx, g_fc = linear_backward(dh, c_fc, need)
    if need:
        accumulate(grads, bn, g_bn)
        accumulate(grads, fc, g_fc)
    return dx


def dense_tangent(t, cache):
    """Forward mode through Linear -> BN -> act [-> dropout] along the input
    tangent t, on the primal forward's cache. Returns (t_out, tangent cache)."""
    fc, bn, c_fc, c_bn, activation, y, mask = cache
    t_h = linear_tangent(t, c_fc)
    t_b = batchnorm_tangent(t_h, c_bn)
    t_y = TANGENTS[activation][0](t_b, y)
    return (t_y if mask is None else dropout_tangent(t_y, mask)), (t, t_h, t_b)


def dense_dual_backward(dout, dt_out, cache, t_cache, grads):
    """Backward of (out, t_out): returns (dx, dt); adds parameter gradients into grads."""
    fc, bn, c_fc, c_bn, activation, y, mask = cache
    t, t_h, t_b = t_cache
    if mask is not None:
        dout, dt_out = dropout_backward(dout, mask), dropout_backward(dt_out, mask)
    dt_b, dy_extra = TANGENTS[activation][1](dt_out, t_b, y)
    db = ACTIVATIONS[activation][1](dout if dy_extra is None else dout + dy_extra, y)
    dh, dt_h, g_bn = batchnorm_dual_backward(db, dt_b, c_bn, t_h)
    dx, dt, g_fc = linear_dual_backward(dh, dt_h, c_fc, t)
    accumulate(grads, bn, g_bn)
    accumulate(grads, fc, g_fc)
    return dx, dt
