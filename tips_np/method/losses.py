"""The losses of TIPS and of the representations paper, each with its gradient.

Every function returns (loss, gradients): the loss as a 0-d array (read back to
the host only when logged, so a GPU step never waits on it) and the arrays'
gradients of that loss. Means are over the batch and over a part's k keypoints.
"""
from ..backend import get_array_module
from ..nn.activations import sigmoid_forward


def reprojection_loss(pose_2d, pose_2d_back, joints):
    """L2D, TIPS eq. 2:  (Y - P R^-1 G(Y~))^2 / N, over one part's keypoints
    (each independent part gets its own L2D over the keypoints it lifts).

    pose_2d, pose_2d_back: (N, 17, 2). Returns (loss, d pose_2d_back)."""
    xp = get_array_module(pose_2d)
    n, k = len(pose_2d), len(joints)
    diff = pose_2d_back[:, joints] - pose_2d[:, joints]
    grad = xp.zeros_like(pose_2d_back)
    grad[:, joints] = (2.0 / (n * k)) * diff
    return (diff * diff).sum() / (n * k), grad


def ninety_degree_loss(z_turned, target):
    """One of the 90-degree constraints, TIPS eqs. 3-5: each has the form
    (1/N) sum_i (G(u_i, y_i) - t_i)^2 = 0 with (u, t) =
        eq. 3  (z_hat, -x)      90 degrees clockwise: (x, y, z) -> (z, y, -x)
        eq. 4  (-z_hat, x)      90 degrees anticlockwise
        eq. 5  (-x, -z_hat)     180 degrees: G(-x, y) = -G(x, y)
    L90 is their sum. z_turned = G(u, y) and target t are (N, k) for one part.
    Returns (loss, d z_turned, d target)."""
    n, k = target.shape
    r = z_turned - target
    d = (2.0 / (n * k)) * r
    return (r * r).sum() / (n * k), d, -d


def all_angle_loss(x, jvp):
    """The all-angle consistency of TIPS's appendix A.3 (eqs. 11-16): rotating (x, y,
    z_hat) about the vertical axis by a small angle a moves the inputs to
    (x - a z_hat, y) and the depths to z_hat + a x, so G(x - a z_hat, y) = z_hat + a x,
    and to first order in a
        x + J_x G . z_hat = 0,
    the derivative of the depths along the input direction (dx, dy) = (z_hat, 0).
    This is (1/N) sum (x + J_x G . z_hat)^2 over one part's k keypoints; x and
    jvp = J_x G . z_hat are (N, k). Returns (loss, d jvp)."""
    n, k = x.shape
    r = x + jvp
    return (r * r).sum() / (n * k), (2.0 / (n * k)) * r


def softplus(x):
    xp = get_array_module(x)
    return xp.logaddexp(0, x)


def generator_adversarial_loss(fake_logits, kind="bce"):
    """The generators' side of the adversarial loss on D(Y~) (logits, (N, 1)).

    bce   (TIPS eq. 6, non-saturating form):  -E log D(Y~),  D = sigmoid(logit)
    lsgan (representations paper eq. 6):       1/2 E (D(Y~) - 1)^2
    Returns (loss, d fake_logits)."""
    n = len(fake_logits)
    if kind == "bce":
        loss = softplus(-fake_logits).mean()
        return loss, (sigmoid_forward(fake_logits) - 1) / n
    if kind == "lsgan":
        r = fake_logits - 1
        return 0.5 * (r * r).mean(), r / n
    raise ValueError(f"unknown GAN loss {kind!r}: expected 'bce' or 'lsgan'")


def discriminator_loss(real_logits, fake_logits, real_target, fake_target, kind="bce", fake_weight=None):
    """The discriminator's side, real Y against reprojected Y~. Targets are 1 for
    real and 0 for fake, except where the caller flipped them (10% label flipping).

    bce   (TIPS eq. 6):   -E[t log D + (1 - t) log(1 - D)] on real and on fake
    lsgan (repr. eq. 6):   1/2 E (D(Y) - t)^2 + 1/2 E (D(Y~) - t)^2
    fake_weight (N, 1), mean 1, weighs each fake's term (an importance weight; None: 1).
    Returns (loss, d real_logits, d fake_logits)."""
    loss, grads = 0.0, []
    for logits, t, w in ((real_logits, real_target, None), (fake_logits, fake_target, fake_weight)):
        n = len(logits)
        if kind == "bce":  # -t log s(l) - (1 - t) log(1 - s(l)) = softplus(l) - t l
            term, d = softplus(logits) - t * logits, sigmoid_forward(logits) - t
        elif kind == "lsgan":
            r = logits - t
            term, d = 0.5 * (r * r), r
        else:
            raise ValueError(f"unknown GAN loss {kind!r}: expected 'bce' or 'lsgan'")
        if w is not None:
            term, d = term * w, d * w
        loss = loss + term.mean()
        grads.append(d / n)
    return loss, grads[0], grads[1]


def squared_error(y, target):
    """The mean squared error of (N, K) arrays, (1/NK) sum (y - target)^2.
    Returns (loss, d y)."""
    n, k = y.shape
    r = y - target
    return (r * r).sum() / (n * k), (2.0 / (n * k)) * r


def distillation_loss(z_student, z_teacher):
    """TIPS eqs. 7 and 10: (1/N) sum_i (G_TIPS(x_i, y_i) - z_hat_i)^2, the student
    matching the teachers' depths. (N, 16) each. Returns (loss, d z_student)."""
    return squared_error(z_student, z_teacher)
