"""One training step of the adversarial self-consistency cycle (TIPS section 3).

Each generator group p is updated with the gradient of its own objective
(TIPS eqs. 8-9, representations paper eq. 7)
    L_p = w_adv,p L_adv + w_2D L2D_p + w_90 L90_p,
where L_adv is shared (one discriminator sees the whole reprojected pose) and
L2D_p, L90_p cover only the keypoints p lifts. The groups are coupled only
through the reprojected pose Y~ (its normalising scale depends on every depth),
so the backward runs once per group, each with its own loss.

The discriminator sees real Y and reprojected Y~ in one batch, so its batch-norm
normalises both with the same statistics: with separate batches it would remove
any shift that all fakes share (say, every depth too large), which is just the
error the generators most need to hear about. It is updated from the same forward
pass (simultaneous update), Y~ held fixed, with label flipping.

Caches are let go as early as the maths allows (the discriminator's after its two
backwards, each 90-degree call's after its own backward): at width 1024 and batch
8192 one generator call caches about 0.7 GB.
"""
import numpy as np

from .backend import get_array_module
from .geometry import (compose, max_normalise, max_normalise_backward, project, project_backward,
                       project_view, project_view_backward, rotate, rotate_backward, rotation_matrices,
                       unproject_view, unproject_view_backward)
from .losses import (discriminator_loss, generator_adversarial_loss, ninety_degree_loss,
                     reprojection_loss)

ELEVATION = np.pi / 18  # elevation uniform in [-pi/18, pi/18] (both papers)
LABEL_FLIP = 0.1        # the discriminator's labels are flipped with 10% chance

# TIPS eqs. 8-9: w1 = 0.05 (legs), w4 = 0.08 (torso) for the adversarial loss,
# w2 = 10 for reprojection, w3 = 3 for the 90-degree losses.
TIPS_ADV_WEIGHT = {"torso": 0.08, "legs": 0.05}
W_2D, W_90 = 10.0, 3.0


def adversarial_weight(group, n_keypoints):
    """TIPS's weights for torso and legs; any other group scales the torso's
    0.08 by its share of keypoints, 0.08 * k / 10 (TIPS sets the weights by how
    much of the pose a generator predicts: 10 of 16 keypoints for the torso)."""
    return TIPS_ADV_WEIGHT.get(group, 0.08 * n_keypoints / 10)


def flat(pose_2d):
    """(N, 17, 2) -> (N, 32): the 16 keypoints at the network's edge, root dropped."""
    return pose_2d[:, 1:].reshape(len(pose_2d), -1)


def unflat(d_flat):
    """The gradient of flat(): (N, 32) -> (N, 17, 2), zero for the root."""
    xp = get_array_module(d_flat)
    d = xp.zeros((len(d_flat), 17, 2), d_flat.dtype)
    d[:, 1:] = d_flat.reshape(len(d_flat), 16, 2)
    return d


def draw_randomness(rng, shape, azimuth_range):
    """A step's (or a whole epoch's, shape (steps, N)) random views and label
    flips, drawn on the host: azimuth uniform in [-a, a], elevation uniform in
    [-pi/18, pi/18], and True where the discriminator's label is flipped (10%)."""
    azimuth = rng.uniform(-azimuth_range, azimuth_range, shape).astype(np.float32)
    elevation = rng.uniform(-ELEVATION, ELEVATION, shape).astype(np.float32)
    return azimuth, elevation, rng.random(shape) < LABEL_FLIP


def adversarial_step(gen, disc, params, pose_2d, R, flip, grads, gan="bce", state=None, perspective=None):
    """Losses of every group and of the discriminator and, into `grads`, each
    generator group's gradient of its own L_p and the discriminator's gradient.

    pose_2d: (N, 17, 2) real normalised 2D poses Y; R: (N, 3, 3) random views;
    flip: (N,) True where the discriminator's label is flipped; perspective: None
    for the orthographic view, else the camera's distance.
    Returns losses: {group: {adv, l2d, l90, total}, 'D': discriminator loss}.
    """
    n = len(pose_2d)
    # Y -> z_hat -> (x, y, z_hat) -> Y~ = P R (x, y, z_hat), normalised again
    z_hat, c_lift = gen.lift(params, pose_2d, True, state)
    y_raw, c_view = project_view(rotate(compose(pose_2d, z_hat), R), perspective)
    y_tilde, scale, c_norm = max_normalise(y_raw)
    # the adversarial loss on the whole reprojected pose, TIPS eq. 6; D sees [Y; Y~]
    xp = get_array_module(pose_2d)
    logits, c_disc = disc.forward(params, xp.concatenate([flat(pose_2d), flat(y_tilde)]), True, state)
    loss_adv, d_fake = generator_adversarial_loss(logits[n:], gan)
    d_logits = xp.concatenate([xp.zeros_like(d_fake), d_fake])
    d_y_tilde_adv = unflat(disc.backward(d_logits, c_disc, params, None)[n:])
    # the discriminator's own loss and gradient from the same forward (Y~ held fixed)
    loss_disc = discriminator_backward(disc, params, logits, c_disc, flip, grads, gan)
    del c_disc  # its cache can go before the generators' second calls
    # Y~ -> G(Y~) -> undo the normalisation and the view's projection -> R^-1 -> P:
    # should give Y back (eq. 2)
    z_tilde, c_lift2 = gen.lift(params, y_tilde)
    z_raw = z_tilde * scale[:, None]
    R_inv = R.transpose(0, 2, 1)
    pose_2d_back = project(rotate(unproject_view(y_raw, z_raw, perspective), R_inv))

    losses = {"D": loss_disc}
    for g, (name, joints, net) in enumerate(gen.groups):
        k = len(joints)
        w_adv = adversarial_weight(name, k)
        l2d, d_back = reprojection_loss(pose_2d, pose_2d_back, joints)

        # ---- backward of L_p into this group's parameters ----
        # L2D through P, R^-1, the view's unprojection and the undone normalisation
        # (y_raw = scale Y~ and z_raw = scale z~, so the scale gets a gradient too)
        d_view_3d = rotate_backward(project_backward(W_2D * d_back), R_inv)
        d_y_raw, d_z_raw = unproject_view_backward(d_view_3d, y_raw, z_raw, perspective)
        d_scale = (d_y_raw * y_tilde).sum(axis=(1, 2)) + (d_z_raw * z_tilde).sum(axis=1)
        d_y_tilde = d_y_raw * scale[:, None, None]
        d_z_tilde = d_z_raw * scale[:, None]
        d_in = net.backward(d_z_tilde[:, joints], c_lift2[g], params, grads)   # G(Y~)
        d_y_tilde[:, joints] += d_in.reshape(n, k, 2)
        d_y_tilde += w_adv * d_y_tilde_adv                                      # shared L_adv
        # Y~ = normalise(P R (x, y, z_hat)) back to z_hat
        d_raw = max_normalise_backward(d_y_tilde, d_scale, c_norm)
        d_z = rotate_backward(project_view_backward(d_raw, c_view, perspective), R)[..., 2][:, joints]
        # L90 (eqs. 3-5): three more calls G(u, y) that should give t; each call's
        # backward follows its forward, so one call's cache is alive at a time.
        # (du/dz_hat, dt/dz_hat) carry the gradient into z_hat, which u or t contain.
        x, y, z = pose_2d[:, joints, 0], pose_2d[:, joints, 1], z_hat[:, joints]
        l90 = 0.0
        for u, t, du_dz, dt_dz in ((z, -x, 1, 0), (-z, x, -1, 0), (-x, -z, 0, -1)):
            z_turned, c_turned = net.forward(params, xp.stack([u, y], axis=-1).reshape(n, -1))
            loss, d_turned, d_t = ninety_degree_loss(z_turned, t)
            l90 = l90 + loss
            d_in = net.backward(W_90 * d_turned, c_turned, params, grads).reshape(n, k, 2)[..., 0]
            d_z += du_dz * d_in + dt_dz * W_90 * d_t
        losses[name] = {"adv": loss_adv, "l2d": l2d, "l90": l90,
                        "total": w_adv * loss_adv + W_2D * l2d + W_90 * l90}
        net.backward(d_z, c_lift[g], params, grads)                             # G(Y)
    return losses


def discriminator_backward(disc, params, logits, c_disc, flip, grads, gan="bce"):
    """The discriminator's loss (eq. 6) on real Y against the fixed Y~, from its
    forward on [Y; Y~]; the labels of the samples where `flip` (N,) is set are
    swapped. Adds D's gradients into grads."""
    xp = get_array_module(logits)
    n = len(flip)
    flip = flip[:, None].astype(logits.dtype)
    loss, d_real, d_fake = discriminator_loss(logits[:n], logits[n:], 1 - flip, flip, gan)
    disc.backward(xp.concatenate([d_real, d_fake]), c_disc, params, grads)
    return loss


def train_step(gen, disc, params, state, opt, pose_2d, azimuth, elevation, flip, gan="bce",
               perspective=None):
    """One step of both networks: every gradient, then one Adam update. The
    random views and label flips (N,) are drawn by the caller (draw_randomness)
    and live where pose_2d lives, so a GPU step copies nothing from the host."""
    R = rotation_matrices(azimuth, elevation, pose_2d.dtype)
    grads = {}
    losses = adversarial_step(gen, disc, params, pose_2d, R, flip, grads, gan, state, perspective)
    opt.step(params, grads)
    return losses
