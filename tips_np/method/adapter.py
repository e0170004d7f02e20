"""The 2D adapter: a detector's keypoints, or noisy 2D, moved towards the 2D poses the
lifter was trained on, before it lifts them.

A lifter keeps the input's x and y (eq. 1 predicts depths only), so whatever is wrong in
a detector's 2D pose passes straight into the 3D pose: its own joint definitions (MPII's
head top is not Human3.6M's head) and its errors. The adapter is the papers' residual
network over the whole normalised pose, added to the pose itself,

    Y' = Y + A(Y),                     A's last layer starting near zero (Y' ~ Y),

trained by least squares, (1/N) sum |Y' - P|^2, on pairs of the same frames: Y a
detector's pose (or a projection with Gaussian noise added in pixels), P the true
projection, both in Y's own frame, P = (p - root(y)) / s(y), so that Y' goes back to the
image through Y's root and scale. These are 2D labels only, the kind a detector
fine-tuned on Human3.6M was trained with; the lifter itself still sees no 3D label.
Adapters are kept per layout ('A/mpii/...', 'A/noise/...') beside the lifter's weights.
"""
import numpy as np

from ..backend import get_array_module, to_numpy
from ..errors import TipsError
from ..nn.mlp import MLP
from .geometry import normalise_2d
from .losses import squared_error
from .skeleton import JOINTS

OUT_SCALE = 0.01   # A starts near zero: the adapter starts as the identity


class AdapterError(TipsError):
    """A 2D adapter asked for that the lifter does not hold."""


def suited(keypoints="h36m", noise=0.0):
    """The layout of the adapter that suits an input: 'mpii' for MPII's keypoints, 'noise'
    for any other detector's (or noisy 2D), None for Human3.6M's own clean joints."""
    if keypoints == "mpii":
        return "mpii"
    return "noise" if keypoints != "h36m" or noise else None


def choose_adapter(have, wanted, choice="auto"):
    """The layout of the lifter's adapter to apply, or None: under 'auto', `wanted`
    (suited()) where the lifter has it; 'none'; or a layout by name."""
    if choice == "none":
        return None
    if choice != "auto":
        if choice not in have:
            raise AdapterError(f"the lifter has no 2D adapter {choice!r} (it has: {', '.join(have) or 'none'})")
        return choice
    return wanted if wanted in have else None


def make_adapter(layout, width=128, blocks=2):
    """The network A of one layout: all 17 joints' (x, y) in, a correction of each out."""
    n = 2 * len(JOINTS)
    return MLP(f"A/{layout}", n, width, blocks, n, "relu", None, 0.0, OUT_SCALE)


def targets_in_frame(clean_2d, clean_scale, clean_root, scale, root):
    """The clean poses P (N, 17, 2), normalised, re-expressed in another pose's frame
    (its root (N, 2) and scale (N,), pixels): (P s_P + root_P - root) / s."""
    pixels = clean_2d * clean_scale[:, None, None] + clean_root[:, None]
    return (pixels - root[:, None]) / scale[:, None, None]


def add_noise(pose_2d, scale, sigma_px, rng):
    """Gaussian noise of sigma_px pixels (a scalar, or one per pose) on normalised poses
    of scale `scale` (N,). Returns (noisy poses, normalised again; their scale and root
    (N, 2) in the clean pose's normalised units: the frame that targets_in_frame needs)."""
    sigma = np.broadcast_to(np.asarray(sigma_px, np.float64), scale.shape)
    noisy = pose_2d + rng.standard_normal(pose_2d.shape) * (sigma / scale)[:, None, None]
    noisy_2d, s = normalise_2d(noisy)
    return noisy_2d, s, noisy[:, 0]


def adapter_step(net, params, state, opt, pose_2d, target):
    """One Adam step of A on a batch: Y' = Y + A(Y) against P (both (N, 17, 2))."""
    n = len(pose_2d)
    correction, cache = net.forward(params, pose_2d.reshape(n, -1), True, state)
    loss, d_out = squared_error(pose_2d.reshape(n, -1) + correction, target.reshape(n, -1))
    grads = {}
    net.backward(d_out, cache, params, grads)
    opt.step(params, grads)
    return loss


def adapt(net, params, state, pose_2d, batch_size=8192):
    """Y' = Y + A(Y) for normalised poses (N, 17, 2) in evaluation mode, normalised again.
    Returns (Y' normalised, its scale and root in Y's units): a pixel of Y' is
    (Y'_n s' + root') s + root(Y) in the image."""
    xp = get_array_module(next(iter(params.values())))
    out = []
    for i in range(0, len(pose_2d), batch_size):
        y = xp.asarray(pose_2d[i:i + batch_size], dtype=params[f"{net.name}/fc_out/W"].dtype)
        correction, _ = net.forward(params, y.reshape(len(y), -1), False, state)
        out.append(to_numpy(y + correction.reshape(y.shape)).astype(np.float64))
    adapted = np.concatenate(out) if out else np.zeros((0,) + pose_2d.shape[1:])
    adapted_2d, scale = normalise_2d(adapted)
    return adapted_2d, scale, adapted[:, 0]


def noisy_pairs(pose_2d, scale, sigma_max, rng):
    """Pairs for the 'noise' adapter: each clean pose with Gaussian noise of a random
    sigma in [0, sigma_max] pixels, the clean pose in the noisy pose's frame, and the
    noisy pose's scale in pixels."""
    noisy, s, root = add_noise(pose_2d, scale, rng.uniform(0, sigma_max, len(pose_2d)), rng)
    return noisy, (pose_2d - root[:, None]) / s[:, None, None], s * scale


def train_adapter(net, params, state, opt, draw_batch, steps, epochs, rng, lr_at=None, validate=None,
                  progress=None):
    """Fit A for `epochs` of `steps` Adam steps. draw_batch(rng) gives a batch of pairs
    (inputs, targets in the inputs' frames: (B, 17, 2)); lr_at(step, total) sets Adam's
    rate; validate(epoch, step) is called after each epoch; progress(1) after each step."""
    for epoch in range(1, epochs + 1):
        for i in range(steps):
            if lr_at is not None:
                opt.lr = lr_at((epoch - 1) * steps + i, epochs * steps)
            x, t = draw_batch(rng)
            adapter_step(net, params, state, opt, x.astype(np.float32), t.astype(np.float32))
            if progress is not None:
                progress(1)
        if validate is not None:
            validate(epoch, epoch * steps)
