"""Inverted dropout. The caller draws the keep-mask (randomness is passed in), so
a forward is deterministic given its mask and the layer is gradient-checkable."""


def dropout_mask(rng, shape, p, dtype):
    """Keep each unit with probability 1 - p and scale kept units by 1 / (1 - p)."""
    return ((rng.random(shape) >= p) / (1.0 - p)).astype(dtype)


def dropout_forward(x, mask):
    return x * mask, mask


def dropout_backward(dy, mask):
    return dy * mask


def dropout_tangent(t, mask):
    """Dropout is linear: the tangent is masked like the activations."""
    return t * mask
