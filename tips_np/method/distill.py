"""TIPS knowledge distillation (section 3.4): one generator G_TIPS on the full
16-keypoint pose learns to match the teachers' depths by mean squared error,
    L_TIPS = (1/N) sum_i (G_TIPS(x_i, y_i) - z_hat_i)^2        (TIPS eqs. 7 and 10),
where z_hat_i comes from whichever teacher (torso or legs generator) lifts keypoint i.
"""
from .losses import distillation_loss


def distill_step(student, params, state, opt, pose_2d, z_teacher, rng=None):
    """One Adam step of the student on a batch; z_teacher (N, 17) is precomputed;
    rng draws dropout masks, if any."""
    z, caches = student.lift(params, pose_2d, True, state, rng)
    group, = student.groups
    loss, d_z = distillation_loss(z[:, group.joints], z_teacher[:, group.joints])
    grads = {}
    group.net.backward(d_z, caches[0], params, grads)
    opt.step(params, grads)
    return {"distill": loss}
