"""Every hand-written backward pass against central differences, in one table
(`python cli.py gradcheck`).

Each row runs one forward on small random float64 inputs, its backward, and
numerical gradients (nn/gradcheck.py), and reports the largest relative error
||a - n|| / (||a|| + ||n||) over the arrays it checks, and which array that was.
A right backward gives about 1e-10; a wrong sign or a missing term gives 1e-2 to 1,
as the last row shows with a bug planted on purpose. The whole step's rows check
each parameter array along one random direction (two evaluations of the step per
array); tests/test_cycle.py checks them entry by entry (python -m pytest -m gradcheck).
"""
from typing import NamedTuple

import numpy as np

from ..method import cycle, geometry, losses
from ..method.model import Generator, make_discriminator
from ..method.skeleton import JOINTS
from ..nn import activations, batchnorm, dense, dropout, linear
from ..nn.gradcheck import along, directional_error, gradient_errors, relative_error
from ..nn.mlp import MLP
from ..nn.residual import residual_backward, residual_forward

BOUND = 1e-6       # every row of a right backward stays below this
LABEL_FLIPS = np.array([True, False, False, True, False, False])   # the tiny step's flipped labels


class Row(NamedTuple):
    section: str
    name: str
    error: float      # the largest relative error over the arrays checked
    worst: str        # the array it belongs to
    planted: bool = False   # a bug planted on purpose: its error should be large


def perturbed_params(net, rng, scale=0.3):
    """float64 parameters (and running statistics) of `net` with non-trivial values
    everywhere (gamma != 1, beta != 0, b != 0): a backward that drops a term cannot hide."""
    params, state = net.init(rng, np.float64)
    for k in params:
        params[k] += scale * rng.standard_normal(params[k].shape)
    for k in state:
        state[k] += rng.random(state[k].shape)
    return params, state


def tiny_cycle(rng, parts, combine=False, n=6):
    """Tiny generators (width 6, 2 blocks) and discriminator (width 5) in float64 with
    perturbed weights, n root-centred max-normalised 2D poses and n random views:
    (gen, disc, params, pose_2d, R)."""
    gen = Generator(parts, combine, width=6, blocks=2)
    disc = make_discriminator(5, 2)
    params, _ = gen.init(rng, np.float64)
    params.update(disc.init(rng, np.float64)[0])
    for k in params:  # non-trivial values everywhere
        params[k] += 0.2 * rng.standard_normal(params[k].shape)
    pose = rng.uniform(-1, 1, (n, len(JOINTS), 2))
    pose[:, 0] = 0
    pose /= np.abs(pose).max(axis=(1, 2), keepdims=True)
    R = geometry.rotation_matrices(rng.uniform(-np.pi, np.pi, n), rng.uniform(-0.17, 0.17, n), np.float64)
    return gen, disc, params, pose, R


def _scalar(dy, forward):
    """sum(dy * forward()): a scalar whose gradient with respect to the output is dy."""
    return lambda: np.sum(dy * forward())


# ------------------------------------------------------------------ the engine (nn/)

def _layers(rng):
    rows = {}
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    dy = rng.standard_normal((5, 3))
    dx, g = linear.linear_backward(dy, linear.linear_forward(x, W, b)[1])
    rows["linear"] = gradient_errors(_scalar(dy, lambda: linear.linear_forward(x, W, b)[0]),
                                     {"x": x, "W": W, "b": b}, {"x": dx, **g})
    for train in (True, False):
        x = rng.standard_normal((8, 4)) * 3 + 1
        gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
        state = {"running_mean": rng.standard_normal(4), "running_var": rng.random(4) + 0.5}
        dy = rng.standard_normal((8, 4))   # not all ones: a constant dy hides batch-norm bugs
        fwd = (lambda: batchnorm.batchnorm_forward(x, gamma, beta, None if train else state, train))
        dx, g = batchnorm.batchnorm_backward(dy, fwd()[1])
        rows[f"batchnorm, {'training' if train else 'evaluation'}"] = gradient_errors(
            _scalar(dy, lambda: fwd()[0]), {"x": x, "gamma": gamma, "beta": beta}, {"x": dx, **g})
    x, dy = rng.standard_normal((3 * 6, 4)) * 3 + 1, rng.standard_normal((3 * 6, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    fwd = (lambda: batchnorm.batchnorm_forward(x, gamma, beta, slices=3))
    dx, g = batchnorm.batchnorm_backward(dy, fwd()[1])
    rows["batchnorm, 3 stacked batches"] = gradient_errors(_scalar(dy, lambda: fwd()[0]),
                                                           {"x": x, "gamma": gamma, "beta": beta}, {"x": dx, **g})
    for name, (fwd_act, bwd_act) in activations.ACTIVATIONS.items():
        x, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
        x[np.abs(x) < 1e-3] = 0.5   # clear of relu's kink
        rows[f"activation {name}"] = gradient_errors(_scalar(dy, lambda: fwd_act(x)), {"x": x},
                                                     {"x": bwd_act(dy, fwd_act(x))})
    mask = dropout.dropout_mask(rng, (6, 5), 0.3, np.float64)
    x, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    rows["dropout"] = gradient_errors(_scalar(dy, lambda: dropout.dropout_forward(x, mask)[0]), {"x": x},
                                      {"x": dropout.dropout_backward(dy, mask)})
    net = MLP("G", 4, 5, 1, activation="leaky_relu")
    params, _ = perturbed_params(net, rng)
    x, dy = rng.standard_normal((7, 4)), rng.standard_normal((7, 5))
    fwd = (lambda: dense.dense_forward(params, "G/fc_in", "G/bn_in", x, "leaky_relu"))
    grads = {}
    dx = dense.dense_backward(dy, fwd()[1], grads)
    rows["dense (Linear, batchnorm, activation)"] = gradient_errors(
        _scalar(dy, lambda: fwd()[0]), {"x": x, **{k: params[k] for k in grads}}, {"x": dx, **grads})
    x = rng.standard_normal((7, 5))
    fwd = (lambda: residual_forward(params, "G/block0", x, "leaky_relu"))
    grads = {}
    dx = residual_backward(dy, fwd()[1], grads)
    rows["residual block"] = gradient_errors(_scalar(dy, lambda: fwd()[0]),
                                             {"x": x, **{k: params[k] for k in grads}}, {"x": dx, **grads})
    for train, drop in ((True, 0.25), (False, 0.0)):
        net = MLP("G", 6, 8, 2, 3, out_activation="tanh", dropout=drop)
        params, state = perturbed_params(net, rng)
        x, dy = rng.standard_normal((9, 6)), rng.standard_normal((9, 3))
        fwd = (lambda: net.forward(params, x, train, None if train else state, np.random.default_rng(7)))
        grads = {}
        dx = net.backward(dy, fwd()[1], params, grads)
        name = "MLP, training, dropout 0.25" if train else "MLP, evaluation"
        rows[name] = gradient_errors(_scalar(dy, lambda: fwd()[0]), {"x": x, **params}, {"x": dx, **grads})
    return rows


def _tangents(rng):
    """Forward mode (TIPS appendix A.3): each tangent against the forward moved along
    it, each dual backward against the gradient of sum(dy y) + sum(dt t_y)."""
    rows = {}
    net = MLP("G", 6, 5, 2, 3, "relu", "tanh")
    params, _ = perturbed_params(net, rng)
    x, t = rng.standard_normal((9, 6)), rng.standard_normal((9, 6))
    y, cache = net.forward(params, x)
    t_out, t_cache = net.tangent(t, cache)
    rows["MLP tangent J t"] = {"t_y": relative_error(t_out, along(lambda v: net.forward(params, v)[0], x, t))}
    dy, dt_out = rng.standard_normal(y.shape), rng.standard_normal(y.shape)

    def scalar():
        y, cache = net.forward(params, x)
        return np.sum(dy * y) + np.sum(dt_out * net.tangent(t, cache)[0])
    grads = {}
    dx, dt = net.dual_backward(dy, dt_out, cache, t_cache, params, grads)
    rows["MLP dual backward"] = gradient_errors(scalar, {"x": x, "t": t, **params}, {"x": dx, "t": dt, **grads})
    return rows


# ------------------------------------------------------------------ the method's geometry and losses

def _geometry(rng):
    rows = {}
    R = geometry.rotation_matrices(rng.uniform(-3, 3, 4), rng.uniform(-0.2, 0.2, 4), np.float64)
    pose, d = rng.standard_normal((4, 17, 3)), rng.standard_normal((4, 17, 3))
    rows["rotate, p' = R p"] = gradient_errors(_scalar(d, lambda: geometry.rotate(pose, R)), {"pose_3d": pose},
                                               {"pose_3d": geometry.rotate_backward(d, R)})
    for depth in (None, 5.5):
        pose = rng.uniform(-1, 1, (4, 17, 3))
        uv, cache = geometry.project_view(pose, depth)
        d2 = rng.standard_normal(uv.shape)
        name = "project, orthographic" if depth is None else f"project, perspective (camera {depth})"
        rows[name] = gradient_errors(_scalar(d2, lambda: geometry.project_view(pose, depth)[0]), {"pose_3d": pose},
                                     {"pose_3d": geometry.project_view_backward(d2, cache, depth)})
    z, d3 = pose[..., 2].copy(), rng.standard_normal(pose.shape)
    d_uv, d_z = geometry.unproject_view_backward(d3, uv, z, 5.5)
    rows["unproject, perspective"] = gradient_errors(_scalar(d3, lambda: geometry.unproject_view(uv, z, 5.5)),
                                                     {"pose_2d": uv, "z": z}, {"pose_2d": d_uv, "z": d_z})
    pose = rng.standard_normal((5, 17, 2))
    y, s, cache = geometry.max_normalise(pose)
    dy, ds = rng.standard_normal(y.shape), rng.standard_normal(5)
    f = (lambda: np.sum(dy * geometry.max_normalise(pose)[0]) + np.sum(ds * geometry.max_normalise(pose)[1]))
    rows["max_normalise"] = gradient_errors(f, {"pose_2d": pose},
                                            {"pose_2d": geometry.max_normalise_backward(dy, ds, cache)})
    return rows


def _losses(rng):
    rows = {}
    a, b, joints = rng.standard_normal((3, 17, 2)), rng.standard_normal((3, 17, 2)), [1, 4, 7]
    rows["L2D, reprojection (TIPS eq. 2)"] = gradient_errors(
        lambda: losses.reprojection_loss(a, b, joints)[0], {"pose_2d_back": b},
        {"pose_2d_back": losses.reprojection_loss(a, b, joints)[1]})
    turned, target = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    _, d_turned, d_target = losses.ninety_degree_loss(turned, target)
    rows["L90, one 90-degree term (eqs. 3-5)"] = gradient_errors(
        lambda: losses.ninety_degree_loss(turned, target)[0], {"G(u, y)": turned, "t": target},
        {"G(u, y)": d_turned, "t": d_target})
    x, jvp = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    rows["L_inf, all-angle (A.3, eq. 16)"] = gradient_errors(lambda: losses.all_angle_loss(x, jvp)[0], {"jvp": jvp},
                                                             {"jvp": losses.all_angle_loss(x, jvp)[1]})
    fake, real = rng.standard_normal((6, 1)) * 3, rng.standard_normal((6, 1)) * 3
    t_real, t_fake = (1.0 - LABEL_FLIPS)[:, None], LABEL_FLIPS[:, None].astype(np.float64)
    w = rng.uniform(0, 2, (6, 1))
    for kind, eq in (("bce", "TIPS eq. 6"), ("lsgan", "repr. eq. 6")):
        rows[f"generators' adversarial, {kind} ({eq})"] = gradient_errors(
            lambda: losses.generator_adversarial_loss(fake, kind)[0], {"logits": fake},
            {"logits": losses.generator_adversarial_loss(fake, kind)[1]})
        _, d_real, d_fake = losses.discriminator_loss(real, fake, t_real, t_fake, kind, w)
        rows[f"discriminator's, {kind}, weighted fakes"] = gradient_errors(
            lambda: losses.discriminator_loss(real, fake, t_real, t_fake, kind, w)[0],
            {"real": real, "fake": fake}, {"real": d_real, "fake": d_fake})
    s, t = rng.standard_normal((4, 16)), rng.standard_normal((4, 16))
    rows["distillation (TIPS eqs. 7, 10)"] = gradient_errors(lambda: losses.distillation_loss(s, t)[0], {"z": s},
                                                             {"z": losses.distillation_loss(s, t)[1]})
    return rows


# ------------------------------------------------------------------ the whole training step

def _step(rng, parts=("torso", "legs"), gan="bce", perspective=None, w_inf=0.0):
    """Each generator group's gradient of its own objective L_p (TIPS eqs. 8-9) and the
    discriminator's of L_D, through the whole cycle, each parameter array along one
    random direction."""
    gen, disc, params, pose, R = tiny_cycle(rng, list(parts))

    def step(grads):
        return cycle.adversarial_step(gen, disc, params, pose, R, LABEL_FLIPS, grads,
                                      cycle.Objective(gan=gan, perspective=perspective, w_inf=w_inf))
    grads = {}
    step(grads)
    rows = {}
    objectives = [(f"generator {g.name}, L_{g.name} (eqs. 8-9)", (lambda g=g: step({})[g.name]["total"]),
                   f"G/{g.name}/") for g in gen.groups]
    objectives.append(("discriminator, L_D (eq. 6)", lambda: step({})["D"], "D/"))
    for name, objective, prefix in objectives:
        rows[name] = {k: directional_error(objective, params[k], grads[k], rng.standard_normal(params[k].shape))
                      for k in params if k.startswith(prefix)}
    return rows


def _planted(rng):
    """For scale: batch-norm's backward without its variance term."""
    x, dy = rng.standard_normal((8, 4)) * 3 + 1, rng.standard_normal((8, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    x_hat, _, inv_std, _ = cache = batchnorm.batchnorm_forward(x, gamma, beta)[1]
    dx, _ = batchnorm.batchnorm_backward(dy, cache)
    wrong = dx + gamma * inv_std * x_hat * (dy * x_hat).mean(axis=0)   # drops  - x_hat mean(dy x_hat)
    return {"batchnorm without its variance term": gradient_errors(
        _scalar(dy, lambda: batchnorm.batchnorm_forward(x, gamma, beta)[0]), {"x": x}, {"x": wrong})}


SECTIONS = [
    ("layer", _layers),
    ("forward mode", _tangents),
    ("geometry", _geometry),
    ("loss", _losses),
    ("step, torso and legs, bce", _step),
    ("step, full pose, lsgan", lambda rng: _step(rng, ("full",), "lsgan")),
    ("step, perspective 5.5 and L_inf", lambda rng: _step(rng, perspective=5.5, w_inf=2.0)),
    ("planted bug", _planted),
]


def gradcheck_table(seed=0, progress=None):
    """Rows for every section, each from its own rng(seed) stream; progress(section) after each."""
    rows = []
    for i, (section, run) in enumerate(SECTIONS):
        for name, errors in run(np.random.default_rng([seed, i])).items():
            worst = max(errors, key=errors.get)
            rows.append(Row(section, name, errors[worst], worst, section == "planted bug"))
        if progress:
            progress(section)
    return rows


def format_table(rows):
    width = max(len(r.section) for r in rows) + 2, max(len(r.name) for r in rows) + 2
    lines = ["part".ljust(width[0]) + "backward of".ljust(width[1]) + "largest rel. error   (array)"]
    for r in rows:
        flag = "   <- wrong on purpose" if r.planted else "" if r.error < BOUND else "   <- ABOVE THE BOUND"
        lines.append(r.section.ljust(width[0]) + r.name.ljust(width[1]) + f"{r.error:17.1e}   ({r.worst}){flag}")
    return "\n".join(lines)
