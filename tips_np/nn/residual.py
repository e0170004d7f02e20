"""The residual block of Martinez et al.:
    y = x + dense(dense(x)),  dense = Linear -> BatchNorm -> activation [-> dropout].
"""
from .dense import dense_backward, dense_dual_backward, dense_forward, dense_tangent


def residual_forward(params, prefix, x, activation, train=True, state=None, masks=(None, None), slices=1):
    h, c1 = dense_forward(params, f"{prefix}/fc1", f"{prefix}/bn1", x, activation, train, state, masks[0], slices)
    h, c2 = dense_forward(params, f"{prefix}/fc2", f"{prefix}/bn2", h, activation, train, state, masks[1], slices)
    return x + h, (c1, c2)


def residual_backward(dy, cache, grads=None):
    c1, c2 = cache
    dh = dense_backward(dy, c2, grads)
    return dy + dense_backward(dh, c1, grads)  # the skip connection passes dy through


def residual_tangent(t, cache):
    """t_y = t + the branch's tangent."""
    c1, c2 = cache
    t_h, tc1 = dense_tangent(t, c1)
    t_b, tc2 = dense_tangent(t_h, c2)
    return t + t_b, (tc1, tc2)


def residual_dual_backward(dy, dt_y, cache, t_cache, grads):
    (c1, c2), (tc1, tc2) = cache, t_cache
    dh, dt_h = dense_dual_backward(dy, dt_y, c2, tc2, grads)
    dx, dt = dense_dual_backward(dh, dt_h, c1, tc1, grads)
    return dy + dx, dt_y + dt
