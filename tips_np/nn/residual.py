"""The residual block of Martinez et al.:
    y = x + dense(dense(x)),  dense = Linear -> BatchNorm -> activation [-> dropout].
"""
from .dense import dense_backward, dense_forward


def residual_forward(params, prefix, x, activation, train=True, state=None, masks=(None, None)):
    h, c1 = dense_forward(params, f"{prefix}/fc1", f"{prefix}/bn1", x, activation, train, state, masks[0])
    h, c2 = dense_forward(params, f"{prefix}/fc2", f"{prefix}/bn2", h, activation, train, state, masks[1])
    return x + h, (c1, c2)


def residual_backward(dy, cache, grads=None):
    c1, c2 = cache
    dh = dense_backward(dy, c2, grads)
    return dy + dense_backward(dh, c1, grads)  # the skip connection passes dy through
