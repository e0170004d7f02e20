"""One training step of the adversarial self-consistency cycle (TIPS section 3): the
fast path training runs. reference_step.py computes the same step plainly, equation
by equation, one network call at a time (tests/test_reference_step.py: the same numbers).

Each generator group p is updated with the gradient of its own objective
(TIPS eqs. 8-9, representations paper eq. 7)
    L_p = w_adv,p L_adv + w_2D L2D_p + w_90 L90_p,
where L_adv is shared (one discriminator sees the whole reprojected pose) and
L2D_p, L90_p cover only the keypoints p lifts. The groups are coupled only
through the reprojected pose Y~ (its normalising scale depends on every depth),
so the backward runs once per group, each with its own loss; after G(Y) and the
discriminator the groups share nothing they write, and on a CPU each may run on
its own core (gen.run_groups: machine.side_by_side in training).

The discriminator sees real Y and reprojected Y~ in one batch, so its batch-norm
normalises both with the same statistics: with separate batches it would remove
any shift that all fakes share (say, every depth too large), which is just the
error the generators most need to hear about. It is updated from the same forward
pass (simultaneous update), Y~ held fixed, with label flipping, and optionally with its
terms of Y~ weighed by how often real poses face the way each view faces (facing_weights).

After G(Y), each group's network is called four more times: on Y~ (eq. 2) and on
the three turned poses of eqs. 3-5. Their inputs are all known once z_hat is, so
they run as ONE call on the four inputs stacked, each batch-normalised with its
own statistics (slices=4): the maths of four calls, in larger matrix products
and a quarter of the passes. Caches are let go as early as the maths allows (the
discriminator's after its two backwards, a group's stacked call's after its
backward); every group's G(Y) cache lives until its own backward: at width 1024
and batch 8192 one generator call on one batch caches about 0.7 GB.
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..backend import get_array_module
from .geometry import (facing, max_normalise, max_normalise_backward,
                       project_view, project_view_backward, rotate, rotate_backward, rotation_matrices,
                       unproject_view, unproject_view_backward)
from .losses import (all_angle_loss, discriminator_loss, generator_adversarial_loss, ninety_degree_loss,
                     reprojection_loss)
from .skeleton import JOINTS, KEYPOINTS

ELEVATION = np.pi / 18  # elevation uniform in [-pi/18, pi/18] (both papers)


def _perspective_min():
    """The nearest a camera at distance d may stand: |x|, |y|, |z_hat| <= 1, so a joint
    of the unprojected pose, (x, y) (d + z_hat) / d, lies within
    sqrt(2 ((d + 1) / d)^2 + 1) of the root, and no view turns it nearer than that.
    d must exceed it for every magnification d / (d + z) to stay finite and
    positive: the fixed point of that bound (about 2.27)."""
    d = 2.0
    for _ in range(100):
        d = float(np.sqrt(2 * ((d + 1) / d) ** 2 + 1))
    return d


PERSPECTIVE_MIN = _perspective_min()
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
    return pose_2d[:, KEYPOINTS].reshape(len(pose_2d), -1)


def unflat(d_flat):
    """The gradient of flat(): (N, 32) -> (N, 17, 2), zero for the root."""
    xp = get_array_module(d_flat)
    d = xp.zeros((len(d_flat), len(JOINTS), 2), d_flat.dtype)
    d[:, KEYPOINTS] = d_flat.reshape(len(d_flat), len(KEYPOINTS), 2)
    return d


@dataclass(frozen=True)
class Objective:
    """What a training step minimises, set once per run (the defaults are the papers'):
    gan: the adversarial loss, "bce" (TIPS eq. 6) or "lsgan" (representations paper eq. 6);
    perspective: None for the orthographic camera P (the papers'), else the camera's
    distance; w_90: the weight of L90 (TIPS eqs. 3-5; 0 leaves it out); w_inf: the weight
    of the all-angle consistency of TIPS's appendix A.3 (0, the papers': left out);
    adv_scale: multiplies TIPS's adversarial weights (eqs. 8-9); real_label: the
    discriminator's target for real poses (0.8 smooths it); pitch (radians): turns the
    random views about the body's axis as a camera looking down sees it
    (geometry.rotation_matrices; 0: about the camera's); weigh_facing: the strength of
    the discriminator's facing weights (facing_weights; 0: not weighed)."""
    gan: str = "bce"
    perspective: float | None = None
    w_90: float = W_90
    w_inf: float = 0.0
    adv_scale: float = 1.0
    real_label: float = 1.0
    pitch: float = 0.0
    weigh_facing: float = 0.0


class Randomness(NamedTuple):
    """A batch's random draws (N,), or a whole epoch's (steps, N): each pose's random
    view R (TIPS section 3.2), given by its azimuth and elevation, and whether the
    discriminator's label of it is flipped."""
    azimuth: object
    elevation: object
    flip: object

    def step(self, i):
        """Step i's draws (N,) of an epoch's (steps, N)."""
        return Randomness(*(r[i] for r in self))


def draw_randomness(rng, shape, azimuth_range):
    """A step's (or a whole epoch's, shape (steps, N)) random views and label
    flips, drawn on the host: azimuth uniform in [-a, a], elevation uniform in
    [-pi/18, pi/18], and True where the discriminator's label is flipped (10%)."""
    azimuth = rng.uniform(-azimuth_range, azimuth_range, shape).astype(np.float32)
    elevation = rng.uniform(-ELEVATION, ELEVATION, shape).astype(np.float32)
    return Randomness(azimuth, elevation, rng.random(shape) < LABEL_FLIP)


class View(NamedTuple):
    """The real pose seen from a random view: Y~ = normalise(P R P^-1(Y, z_hat))."""
    y_raw: object      # P R P^-1(Y, z_hat), before normalising (N, 17, 2)
    y_tilde: object    # Y~ = y_raw / scale
    scale: object      # (N,)
    c_view: object     # the projection's cache
    c_norm: object     # the normalisation's cache
    pose_2d: object    # Y and z_hat, for the unprojection's backward
    z_hat: object


def facing_weights(view, R, perspective=None, pitch=0.0, strength=1.0, kappa=8.0):
    """(N, 1) importance weights, mean 1, for the discriminator's terms of the views:
    p_real(facing of the view) / p_view(facing), where views turned uniformly (azimuth
    180, the papers') face every way equally often, and p_real is a von Mises kernel
    density (kappa 8: about 20 degrees wide) over the facings of the batch's own real
    poses, as lifted; `strength` s in [0, 1] weighs s p_real / p_view + (1 - s) (0:
    every view alike). The views' 3D poses are rebuilt here, as random_view built them
    (N x 17 x 3, a small cost only weighted steps pay).

    Real 2D poses face the camera mostly from the front or the back (Human3.6M: about
    70% within 30 degrees of either, 10% side-on), so an unweighted discriminator
    learns that a side view is fake, and a strong adversarial term pulls the depths
    to hide side views rather than to lift right. Weighted, the views it learns from
    face as real poses do, while every view, side-on included, still teaches the
    generators (their loss is not weighted). Early on the lifts are nearly flat and
    face only the camera, so at full strength the weights also hide the side views of
    flat poses, the first sign that they are wrong: the first thousands of steps learn
    more slowly (on the full data's one-hour runs)."""
    xp = get_array_module(view.z_hat)
    pose_3d = unproject_view(view.pose_2d, view.z_hat, perspective)
    f_real, f_view = facing(pose_3d, pitch), facing(rotate(pose_3d, R), pitch)
    k = xp.exp(kappa * (xp.cos(f_view[:, None] - f_real[None, :]) - 1)).mean(axis=1)
    # s k / c + (1 - s), times c / s; c = I0(kappa) e^-kappa is the kernel's mean over all angles
    w = k + (1 / strength - 1) * float(np.i0(kappa) * np.exp(-kappa))
    return (w / w.mean())[:, None]


class Back(NamedTuple):
    """Y~ lifted again and taken back to the original view: P R^-1 P^-1(Y~, G(Y~)) s."""
    z_tilde: object    # G(Y~) (N, 17), of one group's keypoints (0 elsewhere)
    z_raw: object      # z_tilde * scale
    pose_2d_back: object
    c_back: object     # the projection's cache


def adversarial_step(gen, disc, params, pose_2d, R, flip, grads, objective=Objective(), state=None, rng=None,
                     update_disc=True):
    """Losses of every group and of the discriminator and, into `grads`, each
    generator group's gradient of its own L_p and (if update_disc) the
    discriminator's gradient.

    pose_2d: (N, 17, 2) real normalised 2D poses Y; R: (N, 3, 3) random views;
    flip: (N,) True where the discriminator's label is flipped; objective: the losses'
    settings (Objective); rng draws dropout masks (only when the networks have dropout).
    update_disc False leaves the discriminator's backward out (its loss is still
    reported): a step that updates the generators only.
    Returns losses: {group: {adv, l2d, l90[, linf], total}, 'D': discriminator loss}.
    """
    gan, perspective, w_90, w_inf = objective.gan, objective.perspective, objective.w_90, objective.w_inf
    z_hat, c_lift = gen.lift(params, pose_2d, True, state, rng)                 # eq. 1
    view = random_view(pose_2d, z_hat, R, perspective)
    fake_weight = (facing_weights(view, R, perspective, objective.pitch, objective.weigh_facing)
                   if objective.weigh_facing else None)
    loss_adv, d_y_tilde_adv, loss_disc = adversarial_losses(disc, params, pose_2d, view.y_tilde, flip,
                                                            grads if update_disc else None, gan, state, rng,
                                                            objective.real_label, fake_weight)

    def group_step(group, c_first):
        """L_p of one group and its gradient into grads (only the group's own entries)."""
        w_adv = objective.adv_scale * adversarial_weight(group.name, len(group.joints))
        # L2D and L90 from one stacked call of G; d L_p / d Y~ through L2D (eq. 2) and
        # the shared L_adv (eq. 6), then back to z_hat, where L90's gradient joins it
        l2d, l90, d_y_tilde, d_scale, d_z_90 = consistency_losses(group, params, pose_2d, z_hat, view, R, grads,
                                                                  perspective, rng, w_90)
        d_y_tilde += w_adv * d_y_tilde_adv
        d_z = random_view_backward(d_y_tilde, d_scale, view, R, perspective)[:, group.joints] + d_z_90
        terms = {"adv": loss_adv, "l2d": l2d}
        total = w_adv * loss_adv + W_2D * l2d
        if w_90:
            terms["l90"] = l90
            total = total + w_90 * l90                                                    # eqs. 3-5
        if w_inf:
            terms["linf"] = all_angle_constraint(group, c_first, params, pose_2d, z_hat, d_z, grads, w_inf)
            total = total + w_inf * terms["linf"]                                         # A.3, eq. 16
        group.net.backward(d_z, c_first, params, grads)                                   # G(Y)
        return {**terms, "total": total}

    # the groups are independent from here: on a CPU each may run on its own core (gen.run_groups)
    per_group = gen.run_groups(group_step, zip(gen.groups, c_lift), gen.draws_random)
    return {"D": loss_disc, **{group.name: terms for group, terms in zip(gen.groups, per_group)}}


def random_view(pose_2d, z_hat, R, perspective=None):
    """Y -> P^-1(Y, z_hat) -> Y~ = P R P^-1(Y, z_hat), normalised again (TIPS section 3.2).
    Orthographic: P^-1(Y, z_hat) = (x, y, z_hat). With a perspective camera, Y is taken as
    its view too, P^-1 unprojects it at the depths z_hat, and the view R = I gives Y back."""
    y_raw, c_view = project_view(rotate(unproject_view(pose_2d, z_hat, perspective), R), perspective)
    y_tilde, scale, c_norm = max_normalise(y_raw)
    return View(y_raw, y_tilde, scale, c_view, c_norm, pose_2d, z_hat)


def random_view_backward(d_y_tilde, d_scale, view, R, perspective=None):
    """d L / d z_hat (N, 17) from d L / d Y~ and d L / d scale."""
    d_raw = max_normalise_backward(d_y_tilde, d_scale, view.c_norm)
    d_pose_3d = rotate_backward(project_view_backward(d_raw, view.c_view, perspective), R)
    return unproject_view_backward(d_pose_3d, view.pose_2d, view.z_hat, perspective)[1]


def adversarial_losses(disc, params, pose_2d, y_tilde, flip, grads, gan="bce", state=None, rng=None,
                       real_label=1.0, fake_weight=None):
    """TIPS eq. 6 on the whole reprojected pose. D sees [Y; Y~] in one batch.
    Returns the generators' loss, its gradient at Y~ (N, 17, 2), and the
    discriminator's loss, whose gradient (Y~ held fixed) goes into grads (None:
    not computed)."""
    xp = get_array_module(pose_2d)
    n = len(pose_2d)
    logits, c_disc = disc.forward(params, xp.concatenate([flat(pose_2d), flat(y_tilde)]), True, state, rng)
    loss_adv, d_fake = generator_adversarial_loss(logits[n:], gan)
    d_logits = xp.concatenate([xp.zeros_like(d_fake), d_fake])
    d_y_tilde_adv = unflat(disc.backward(d_logits, c_disc, params, None)[n:])
    loss_disc = discriminator_backward(disc, params, logits, c_disc, flip, grads, gan, real_label, fake_weight)
    return loss_adv, d_y_tilde_adv, loss_disc


def consistency_losses(group, params, pose_2d, z_hat, view, R, grads, perspective=None, rng=None, w_90=W_90):
    """L2D (TIPS eq. 2) and L90 (eqs. 3-5) of one group, from ONE call of its
    network on four stacked inputs (each its own batch for batch-norm): Y~, and
    (u, y) of the three turns, which should give t. The stacked backward adds the
    four calls' weight gradients into grads. w_90 = 0 leaves the turns out.
    Returns (L2D, L90, d L2D / d Y~ (N, 17, 2), d L2D / d scale (N,),
    w_90 d L90 / d z_hat (N, k): u or t contain z_hat)."""
    xp = get_array_module(pose_2d)
    n, k = len(pose_2d), len(group.joints)
    x, y, z = pose_2d[:, group.joints, 0], pose_2d[:, group.joints, 1], z_hat[:, group.joints]
    turns = ((z, -x, 1, 0), (-z, x, -1, 0), (-x, -z, 0, -1)) if w_90 else ()   # (u, t, du/dz_hat, dt/dz_hat)
    inputs = [view.y_tilde[:, group.joints]] + [xp.stack([u, y], axis=-1) for u, _, _, _ in turns]
    out, cache = group.net.forward(params, xp.concatenate(inputs).reshape(len(inputs) * n, 2 * k), True, None,
                                   rng, slices=len(inputs))
    out = out.reshape(len(inputs), n, k)
    back = lift_back(group, out[0], view, R, perspective)                          # G(Y~)
    l2d, d_y_tilde, d_scale, d_z_tilde = reprojection_backward(group, pose_2d, view, back, R, perspective)
    d_out, d_z, l90 = [d_z_tilde], xp.zeros_like(z), 0.0
    for z_turned, (_, t, _, dt_dz) in zip(out[1:], turns):                          # G(u, y) = t
        loss, d_turned, d_t = ninety_degree_loss(z_turned, t)
        l90 = l90 + loss
        d_out.append(w_90 * d_turned)
        d_z += dt_dz * w_90 * d_t
    d_in = group.net.backward(xp.concatenate(d_out), cache, params, grads).reshape(len(inputs), n, k, 2)
    d_y_tilde[:, group.joints] += d_in[0]
    for d_in_turned, (_, _, du_dz, _) in zip(d_in[1:], turns):
        d_z += du_dz * d_in_turned[..., 0]
    return l2d, l90, d_y_tilde, d_scale, d_z


def lift_back(group, z_tilde, view, R, perspective=None):
    """G(Y~) of one group's keypoints (N, k), with Y~'s own (x, y), undone out of the
    normalisation and the view's projection, R^-1, P: which should give Y back (eq. 2)."""
    xp = get_array_module(z_tilde)
    z_full = xp.zeros(view.y_raw.shape[:2], z_tilde.dtype)
    z_full[:, group.joints] = z_tilde
    z_raw = z_full * view.scale[:, None]
    R_inv = R.transpose(0, 2, 1)
    pose_2d_back, c_back = project_view(rotate(unproject_view(view.y_raw, z_raw, perspective), R_inv), perspective)
    return Back(z_full, z_raw, pose_2d_back, c_back)


def reprojection_backward(group, pose_2d, view, back, R, perspective=None):
    """L2D of one group (TIPS eq. 2) and its gradient, through P, R^-1, the view's
    unprojection and the undone normalisation (y_raw = scale Y~ and z_raw = scale
    z~, so the scale gets a gradient too).
    Returns (L2D, d L2D / d Y~ (N, 17, 2), d L2D / d scale (N,), d L2D / d G(Y~) (N, k))."""
    l2d, d_back = reprojection_loss(pose_2d, back.pose_2d_back, group.joints)
    d_view_3d = rotate_backward(project_view_backward(W_2D * d_back, back.c_back, perspective), R.transpose(0, 2, 1))
    d_y_raw, d_z_raw = unproject_view_backward(d_view_3d, view.y_raw, back.z_raw, perspective)
    d_scale = (d_y_raw * view.y_tilde).sum(axis=(1, 2)) + (d_z_raw * back.z_tilde).sum(axis=1)
    d_y_tilde = d_y_raw * view.scale[:, None, None]
    d_z_tilde = d_z_raw[:, group.joints] * view.scale[:, None]
    return l2d, d_y_tilde, d_scale, d_z_tilde


def all_angle_constraint(group, c_first, params, pose_2d, z_hat, d_z, grads, w_inf):
    """L_inf of one group (TIPS appendix A.3): one forward-mode pass along the
    input direction (z_hat, 0) on the cache of G(Y), and its backward. Adds
    w_inf dL_inf/d(weights) at fixed direction into grads and w_inf dL_inf/dz_hat
    (through the direction) into d_z (N, k), which G(Y)'s own backward carries on.
    Returns L_inf."""
    xp = get_array_module(pose_2d)
    n, k = len(pose_2d), len(group.joints)
    x, z = pose_2d[:, group.joints, 0], z_hat[:, group.joints]
    direction = xp.stack([z, xp.zeros_like(z)], axis=-1).reshape(n, -1)   # (dx, dy) = (z_hat, 0)
    jvp, t_cache = group.net.tangent(direction, c_first)                  # J_x G . z_hat
    loss, d_jvp = all_angle_loss(x, jvp)
    _, d_direction = group.net.dual_backward(None, w_inf * d_jvp, c_first, t_cache, params, grads)
    d_z += d_direction.reshape(n, k, 2)[..., 0]
    return loss


def flatten_losses(losses):
    """{'D': l, 'torso': {'adv': l, ...}} -> {'D': l, 'torso/adv': l, ...}"""
    out = {}
    for g, terms in losses.items():
        if isinstance(terms, dict):
            out.update({f"{g}/{t}": v for t, v in terms.items()})
        else:
            out[g] = terms
    return out


def discriminator_backward(disc, params, logits, c_disc, flip, grads, gan="bce", real_label=1.0, fake_weight=None):
    """The discriminator's loss (eq. 6) on real Y against the fixed Y~, from its
    forward on [Y; Y~]; real targets are real_label (1, or 0.8 smoothed), fake 0,
    and the labels of the samples where `flip` (N,) is set are swapped; fake_weight
    (N, 1) weighs the fakes' terms (None: 1). Adds D's gradients into grads (None: the
    loss alone)."""
    xp = get_array_module(logits)
    n = len(flip)
    flip = flip[:, None].astype(logits.dtype)
    loss, d_real, d_fake = discriminator_loss(logits[:n], logits[n:], (1 - flip) * real_label, flip * real_label, gan,
                                              fake_weight)
    if grads is not None:
        disc.backward(xp.concatenate([d_real, d_fake]), c_disc, params, grads)
    return loss


def train_step(gen, disc, params, state, opt, pose_2d, randomness, objective=Objective(), rng=None,
               update_disc=True):
    """One step of both networks (of the generators alone if not update_disc):
    every gradient, then one Adam update. The random views and label flips
    (randomness: Randomness of (N,) arrays) are drawn by the caller (draw_randomness)
    and live where pose_2d lives, so a GPU step copies nothing from the host;
    objective: the losses' settings (Objective); rng draws dropout masks, if any."""
    R = rotation_matrices(randomness.azimuth, randomness.elevation, pose_2d.dtype, objective.pitch)
    grads = {}
    losses = adversarial_step(gen, disc, params, pose_2d, R, randomness.flip, grads, objective, state, rng,
                              update_disc)
    opt.step(params, grads)
    return losses
