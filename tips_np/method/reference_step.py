"""One adversarial training step of TIPS, written plainly: the method in one place.

TIPS's equations in order (section 3), one generator group at a time, one call of a
network per network evaluation, then the chain rule back, each line citing its
equation. It computes what cycle.adversarial_step computes; the fast path gets there
faster (the four further calls of a group stacked into one, the groups side by side
on the cores, caches let go early) and is what training runs.
tests/test_reference_step.py checks that both give the same losses, gradients and
batch-norm statistics.

Left out here, as they are not TIPS's equations 1-9: the all-angle consistency of
the appendix (w_inf), the facing weights of the discriminator (weigh_facing), a
step that leaves the discriminator alone, and dropout. Eq. 7 (distillation) is a
step of its own: distill.distill_step.
"""
from ..backend import get_array_module
from .cycle import W_2D, Objective, adversarial_weight, flat, unflat
from .geometry import (max_normalise, max_normalise_backward, project_view, project_view_backward, rotate,
                       rotate_backward, unproject_view, unproject_view_backward)
from .losses import discriminator_loss, generator_adversarial_loss, ninety_degree_loss, reprojection_loss


def reference_step(gen, disc, params, state, pose_2d, R, flip, objective=Objective()):
    """Losses and gradients of one step, as cycle.adversarial_step's.

    pose_2d: (N, 17, 2) real normalised 2D poses Y; R: (N, 3, 3) the random views
    (geometry.rotation_matrices); flip: (N,) True where the discriminator's label is
    flipped; objective: the losses' settings (cycle.Objective; its defaults are the
    papers'), of which w_inf and weigh_facing must be 0 (left out here).
    Updates the batch-norm running statistics in `state` (of G(Y) and D's call).
    Returns (losses, grads): losses {group: {adv, l2d, l90, total}, 'D': L_D};
    grads {parameter: gradient}: each group's of its own L_p, D's of its loss."""
    if objective.w_inf or objective.weigh_facing:
        raise ValueError("reference_step leaves out w_inf and weigh_facing: cycle.adversarial_step has them")
    gan, perspective, w_90 = objective.gan, objective.perspective, objective.w_90
    adv_scale, real_label = objective.adv_scale, objective.real_label
    xp = get_array_module(pose_2d)
    n = len(pose_2d)
    R_inv = R.transpose(0, 2, 1)

    # ---- forward: the equations in order ----
    z_hat, c_lift = gen.lift(params, pose_2d, True, state)                          # eq. 1: G(x, y) = z_hat
    y_raw, c_view = project_view(rotate(unproject_view(pose_2d, z_hat, perspective), R), perspective)
    y_tilde, scale, c_norm = max_normalise(y_raw)                                   # Y~ = P R (x, y, z_hat), in [-1, 1]

    fwd = {}
    for group in gen.groups:
        j, net = group.joints, group.net
        x, y, z = pose_2d[:, j, 0], pose_2d[:, j, 1], z_hat[:, j]
        f = fwd[group.name] = {"l90": 0.0, "turns": []}
        # eq. 2: G(Y~), the normalisation undone, turned back by R^-1 and projected should give Y
        z_tilde, f["c_tilde"] = net.forward(params, y_tilde[:, j].reshape(n, -1))  # G(Y~)
        f["z_full"] = xp.zeros_like(z_hat)
        f["z_full"][:, j] = z_tilde
        f["z_raw"] = f["z_full"] * scale[:, None]
        pose_back, f["c_back"] = project_view(rotate(unproject_view(y_raw, f["z_raw"], perspective), R_inv),
                                              perspective)                          # P R^-1 (Y~, G(Y~))
        f["l2d"], f["d_back"] = reprojection_loss(pose_2d, pose_back, j)             # eq. 2: L2D
        # eqs. 3-5: the pose turned by 90 degrees both ways and by 180: G(u, y) should give t
        for u, t, du_dz, dt_dz in ((z, -x, 1, 0),                                   # eq. 3: G(z_hat, y) = -x
                                   (-z, x, -1, 0),                                  # eq. 4: G(-z_hat, y) = x
                                   (-x, -z, 0, -1)):                                # eq. 5: G(-x, y) = -z_hat
            z_turned, c_turned = net.forward(params, xp.stack([u, y], axis=-1).reshape(n, -1))
            loss, d_turned, d_t = ninety_degree_loss(z_turned, t)
            f["l90"] = f["l90"] + loss                                              # L90: their sum
            f["turns"].append((c_turned, d_turned, d_t, du_dz, dt_dz))

    # eq. 6: one discriminator sees real Y and Y~ in one batch (one batch-norm for both)
    logits, c_disc = disc.forward(params, xp.concatenate([flat(pose_2d), flat(y_tilde)]), True, state)
    loss_adv, d_fake = generator_adversarial_loss(logits[n:], gan)                 # eq. 6, the generators' side
    flipped = flip[:, None].astype(logits.dtype)                                    # 10% of D's labels swapped
    loss_disc, d_real_d, d_fake_d = discriminator_loss(logits[:n], logits[n:], (1 - flipped) * real_label,
                                                       flipped * real_label, gan)    # eq. 6, D's side

    losses = {"D": loss_disc}
    for group in gen.groups:                                                        # eqs. 8-9: L_p per group
        f, w_adv = fwd[group.name], adv_scale * adversarial_weight(group.name, len(group.joints))
        f["w_adv"] = w_adv
        losses[group.name] = {"adv": loss_adv, "l2d": f["l2d"], "l90": f["l90"],
                              "total": w_adv * loss_adv + W_2D * f["l2d"] + w_90 * f["l90"]}

    # ---- backward: the chain rule in reverse ----
    grads = {}
    disc.backward(xp.concatenate([d_real_d, d_fake_d]), c_disc, params, grads)   # eq. 6: D's gradient, Y~ fixed
    d_logits = xp.concatenate([xp.zeros_like(d_fake), d_fake])
    d_y_tilde_adv = unflat(disc.backward(d_logits, c_disc, params, None)[n:])       # d L_adv / d Y~, D fixed

    for group, c_first in zip(gen.groups, c_lift):          # each group's gradient of its own L_p (eqs. 8-9)
        j, net, f = group.joints, group.net, fwd[group.name]
        k = len(j)
        # eq. 2 back through P, R^-1 and the unprojection, to Y~, to G(Y~) and to the scale of Y~
        d_view_3d = rotate_backward(project_view_backward(W_2D * f["d_back"], f["c_back"], perspective), R_inv)
        d_y_raw, d_z_raw = unproject_view_backward(d_view_3d, y_raw, f["z_raw"], perspective)
        d_scale = (d_y_raw * y_tilde).sum(axis=(1, 2)) + (d_z_raw * f["z_full"]).sum(axis=1)
        d_y_tilde = d_y_raw * scale[:, None, None]
        d_in = net.backward(d_z_raw[:, j] * scale[:, None], f["c_tilde"], params, grads)   # through G(Y~)
        d_y_tilde[:, j] += d_in.reshape(n, k, 2)
        d_y_tilde += f["w_adv"] * d_y_tilde_adv                                      # eq. 6 meets eq. 2 at Y~
        # eqs. 3-5 back through their three calls, to z_hat, which sits in u or in t
        d_z = xp.zeros_like(z_hat[:, j])
        for c_turned, d_turned, d_t, du_dz, dt_dz in f["turns"]:
            d_in = net.backward(w_90 * d_turned, c_turned, params, grads).reshape(n, k, 2)
            d_z += du_dz * d_in[..., 0] + dt_dz * w_90 * d_t
        # back through Y~ = P R (x, y, z_hat) to z_hat, and through G(Y) (eq. 1) into the group's weights
        d_raw = max_normalise_backward(d_y_tilde, d_scale, c_norm)
        d_pose_3d = rotate_backward(project_view_backward(d_raw, c_view, perspective), R)
        d_z += unproject_view_backward(d_pose_3d, pose_2d, z_hat, perspective)[1][:, j]
        net.backward(d_z, c_first, params, grads)
    return losses, grads
