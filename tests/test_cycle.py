"""The whole generator objective of every representation, and the discriminator's,
gradient-checked in float64 on tiny networks: L2D through rotation, projection and
re-normalisation, L90 through its three extra calls, the adversarial term through D."""
import numpy as np
import pytest

from tips_np.method import cycle
from tips_np.method.geometry import facing, rotate, rotation_matrices, unproject_view
from tips_np.method.model import Generator
from tips_np.nn.gradcheck import numerical_gradient, relative_error
from tips_np.tools.gradcheck_table import LABEL_FLIPS as FLIP
from tips_np.tools.gradcheck_table import tiny_cycle as tiny_setup   # (shared with python cli.py gradcheck)

TOL = 1e-6


@pytest.mark.gradcheck
@pytest.mark.parametrize("parts,combine,gan,perspective", [
    (["torso", "legs"], False, "bce", None),
    (["full"], False, "lsgan", None),
    (["torso", "legs"], True, "bce", None),
    (["larm", "rarm", "spine", "lleg", "rleg"], False, "lsgan", None),
    (["torso", "legs"], False, "bce", 4.0),
])
def test_each_group_gets_the_gradient_of_its_own_objective(rng, parts, combine, gan, perspective):
    gen, disc, params, pose, R = tiny_setup(rng, parts, combine)
    grads = {}
    settings = cycle.Objective(gan=gan, perspective=perspective)
    cycle.adversarial_step(gen, disc, params, pose, R, FLIP, grads, settings)
    for name, _, _ in gen.groups:
        def objective():
            return cycle.adversarial_step(gen, disc, params, pose, R, FLIP, {}, settings)[name]["total"]
        mine = [k for k in params if k.startswith(f"G/{name}/") or (combine and k.startswith("G/"))]
        assert mine and set(mine) <= set(grads)
        for k in mine:
            err = relative_error(grads[k], numerical_gradient(objective, params[k]))
            assert err < TOL, f"{name}: d L_{name} / d {k}: relative error {err:.2e}"


def test_independent_parts_share_nothing(rng):
    """The legs' objective does not reach the torso's weights through their own
    update: perturbing the torso's weights changes the torso's losses only via Y~."""
    gen, disc, params, pose, R = tiny_setup(rng, ["torso", "legs"])
    assert not set(k for k in params if k.startswith("G/torso/")) & set(k for k in params if k.startswith("G/legs/"))
    z, _ = gen.lift(params, pose)
    params["G/torso/fc_out/b"] += 1.0
    z2, _ = gen.lift(params, pose)
    legs = [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(z[:, legs], z2[:, legs])
    assert not np.allclose(z[:, 7:], z2[:, 7:])


@pytest.mark.gradcheck
@pytest.mark.parametrize("gan,weigh_facing", [("bce", 0.0), ("lsgan", 0.0), ("bce", 0.5), ("lsgan", 1.0)])
def test_discriminator_gradient(rng, gan, weigh_facing):
    """(With facing weights, which depend on the generators only: constants to D.)"""
    gen, disc, params, pose, R = tiny_setup(rng, ["torso", "legs"])

    def loss(grads):
        return cycle.adversarial_step(gen, disc, params, pose, R, FLIP, grads,
                                      cycle.Objective(gan=gan, weigh_facing=weigh_facing, pitch=0.2))["D"]

    grads = {}
    loss(grads)
    d_params = {k for k in params if k.startswith("D/")}
    assert d_params <= set(grads)
    for k in d_params:
        err = relative_error(grads[k], numerical_gradient(lambda: loss({}), params[k]))
        assert err < TOL, f"d L_D / d {k}: relative error {err:.2e}"


@pytest.mark.gradcheck
def test_a_wrong_sign_in_the_cycle_is_caught(rng, monkeypatch):
    """The same check passes on the right backward and fails once a bug is planted
    (the rotations' backward uses R^T where it needs R)."""
    gen, disc, params, pose, R = tiny_setup(rng, ["full"])
    k = "G/full/fc_out/W"

    def error():
        grads = {}
        cycle.adversarial_step(gen, disc, params, pose, R, FLIP, grads)
        objective = lambda: cycle.adversarial_step(gen, disc, params, pose, R, FLIP, {})["full"]["total"]  # noqa: E731
        return relative_error(grads[k], numerical_gradient(objective, params[k]))
    assert error() < TOL
    monkeypatch.setattr(cycle, "rotate_backward", lambda d, R: d @ R.transpose(0, 2, 1))
    assert error() > 1e-3


def test_adversarial_weights_follow_tips():
    assert cycle.adversarial_weight("torso", 10) == 0.08
    assert cycle.adversarial_weight("legs", 6) == 0.05
    assert np.isclose(cycle.adversarial_weight("full", 16), 0.128)
    assert np.isclose(cycle.adversarial_weight("larm", 3), 0.024)


@pytest.mark.gradcheck
def test_the_objective_with_dropout_masks_drawn_by_the_caller(rng):
    """With dropout, every generator call draws its masks from the generator passed
    in; reseeded, the same masks come back, and the gradient checks."""
    gen, disc, params, pose, R = tiny_setup(rng, ["torso", "legs"])
    gen = Generator(["torso", "legs"], width=6, blocks=2, dropout=0.3)

    def losses(grads, seed=7):
        return cycle.adversarial_step(gen, disc, params, pose, R, FLIP, grads, rng=np.random.default_rng(seed))

    grads = {}
    losses(grads)
    assert float(losses({}, seed=8)["torso"]["total"]) != float(losses({})["torso"]["total"])  # masks matter
    for k in ("G/torso/block1/fc2/W", "G/torso/fc_in/W", "G/legs/bn_in/gamma"):
        group = k.split("/")[1]
        err = relative_error(grads[k], numerical_gradient(lambda: losses({})[group]["total"], params[k]))
        assert err < TOL, f"d L_{group} / d {k}: relative error {err:.2e}"


@pytest.mark.gradcheck
@pytest.mark.parametrize("parts,w_90", [(["torso", "legs"], 3.0), (["full"], 0.0)])
def test_the_all_angle_constraint_through_the_whole_step(rng, parts, w_90):
    """L_inf (TIPS appendix A.3) beside L90 or instead of it: each group's gradient
    of its own objective, through the forward-mode pass and the direction z_hat."""
    gen, disc, params, pose, R = tiny_setup(rng, parts)

    def step(grads):
        return cycle.adversarial_step(gen, disc, params, pose, R, FLIP, grads, cycle.Objective(w_90=w_90, w_inf=2.0))
    grads = {}
    losses = step(grads)
    for name, _, _ in gen.groups:
        assert float(losses[name]["linf"]) > 0 and ("l90" in losses[name]) == bool(w_90)
        for k in [k for k in params if k.startswith(f"G/{name}/")]:
            err = relative_error(grads[k], numerical_gradient(lambda: step({})[name]["total"], params[k]))
            assert err < TOL, f"{name}: d L_{name} / d {k}: relative error {err:.2e}"
    # x + J_x G . z_hat by central differences: G at inputs rotated by a small angle
    name, joints, net = gen.groups[0]
    n, k, h = len(pose), len(joints), 1e-6
    z_hat, _ = gen.lift(params, pose)
    x, z = pose[:, joints, 0], z_hat[:, joints]

    def G(dx):
        moved = pose[:, joints].copy()
        moved[..., 0] += dx
        return net.forward(params, moved.reshape(n, -1))[0]
    jvp = (G(h * z) - G(-h * z)) / (2 * h)
    assert float(losses[name]["linf"]) == pytest.approx(((x + jvp) ** 2).mean(), rel=1e-6)


@pytest.mark.gradcheck
def test_discriminator_gradient_with_smoothed_labels_and_scaled_adversarial_weights(rng):
    """Label smoothing (real target 0.8) and a scaled adversarial weight keep every
    gradient exact; the papers' values (1, 1) are the defaults."""
    gen, disc, params, pose, R = tiny_setup(rng, ["torso", "legs"])

    def losses(grads):
        return cycle.adversarial_step(gen, disc, params, pose, R, FLIP, grads,
                                      cycle.Objective(adv_scale=7.5, real_label=0.8))

    grads = {}
    losses(grads)
    for k in ("D/fc_in/W", "G/torso/fc_out/W", "G/legs/fc_in/W"):
        name = "D" if k.startswith("D/") else k.split("/")[1]
        value = (lambda: losses({})["D"]) if name == "D" else (lambda: losses({})[name]["total"])
        err = relative_error(grads[k], numerical_gradient(value, params[k]))
        assert err < TOL, f"{k}: relative error {err:.2e}"
    plain, scaled = (cycle.adversarial_step(gen, disc, params, pose, R, FLIP, {}, cycle.Objective(adv_scale=s))
                     for s in (1.0, 7.5))
    for g in ("torso", "legs"):
        w = cycle.adversarial_weight(g, 10 if g == "torso" else 6)
        np.testing.assert_allclose(scaled[g]["total"] - plain[g]["total"], 6.5 * w * plain[g]["adv"])


class Unstacked:
    """A network whose stacked call (slices > 1) runs as separate calls, one per slice."""

    def __init__(self, net):
        self.net = net

    def forward(self, params, x, train=True, state=None, rng=None, slices=1):
        calls = [self.net.forward(params, x_i, train, state, rng) for x_i in np.split(x, slices)]
        return np.concatenate([y for y, _ in calls]), [c for _, c in calls]

    def backward(self, dy, caches, params, grads=None):
        if not isinstance(caches, list):  # G(Y): one call
            return self.net.backward(dy, caches, params, grads)
        return np.concatenate([self.net.backward(dy_i, c, params, grads)
                               for dy_i, c in zip(np.split(dy, len(caches)), caches)])


@pytest.mark.parametrize("parts,combine", [(["torso", "legs"], False), (["torso", "legs"], True)])
def test_the_stacked_step_equals_the_unstacked_step(rng, parts, combine):
    """G(Y~) and the three 90-degree calls run as one stacked call: the step's
    losses and every gradient are those of five separate calls per group."""
    gen, disc, params, pose, R = tiny_setup(rng, parts, combine, n=8)
    flip = np.resize(FLIP, 8)
    stacked, separate = {}, {}
    losses = cycle.flatten_losses(cycle.adversarial_step(gen, disc, params, pose, R, flip, stacked))
    gen.groups = [g._replace(net=Unstacked(g.net)) for g in gen.groups]
    reference = cycle.flatten_losses(cycle.adversarial_step(gen, disc, params, pose, R, flip, separate))
    assert set(stacked) == set(separate) == set(params)
    for k in losses:
        np.testing.assert_allclose(losses[k], reference[k], rtol=1e-10, err_msg=k)
    for k in params:
        np.testing.assert_allclose(stacked[k], separate[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_a_generator_only_step_leaves_the_discriminator(rng):
    """update_disc=False (a step between the discriminator's updates, config d_every):
    no discriminator gradient, the same generator gradients and reported losses."""
    gen, disc, params, pose, R = tiny_setup(rng, ["torso", "legs"])
    both, g_only = {}, {}
    l_both = cycle.flatten_losses(cycle.adversarial_step(gen, disc, params, pose, R, FLIP, both))
    l_g = cycle.flatten_losses(cycle.adversarial_step(gen, disc, params, pose, R, FLIP, g_only, update_disc=False))
    assert not any(k.startswith("D/") for k in g_only)
    assert set(g_only) == {k for k in both if k.startswith("G/")}
    for k in g_only:
        np.testing.assert_array_equal(g_only[k], both[k])
    assert l_g == l_both


@pytest.mark.parametrize("perspective", [None, 5.5, cycle.PERSPECTIVE_MIN * 1.01])
def test_the_true_depths_close_the_cycle(rng, perspective):
    """With the depths that belong to Y, the view R = I is Y itself, and lifting Y~
    with its own true depths and turning back gives Y (L2D = 0): in perspective the
    real pose is taken as that camera's view, so both ends of the cycle are pinhole views."""
    n = 50
    pose_2d = rng.uniform(-1, 1, (n, 17, 2))
    pose_2d[:, 0] = 0
    pose_2d /= np.abs(pose_2d).max(axis=(1, 2), keepdims=True)
    z = rng.uniform(-1, 1, (n, 17))
    z[:, 0] = 0
    same = cycle.random_view(pose_2d, z, np.tile(np.eye(3), (n, 1, 1)), perspective)
    assert np.allclose(same.y_tilde, pose_2d)
    R = rotation_matrices(rng.uniform(-np.pi, np.pi, n), rng.uniform(-0.17, 0.17, n), np.float64, 0.2)
    view = cycle.random_view(pose_2d, z, R, perspective)
    pose_3d = pose_2d * (1 if perspective is None else (perspective + z[..., None]) / perspective)
    z_tilde = (np.concatenate([pose_3d, z[..., None]], axis=-1) @ R.transpose(0, 2, 1))[..., 2] / view.scale[:, None]
    group = Generator(["full"], False, width=6, blocks=1).groups[0]
    back = cycle.lift_back(group, z_tilde[:, group.joints], view, R, perspective)
    assert np.allclose(back.pose_2d_back, pose_2d)


def test_a_turn_about_the_body_axis_adds_to_its_facing(rng):
    """facing() measures the turn the views make: T R_y(a) T^T adds a (a camera 12
    degrees above, in perspective)."""
    pitch, d = np.radians(12), 5.5
    pose_3d = unproject_view(rng.uniform(-1, 1, (64, 17, 2)), rng.uniform(-1, 1, (64, 17)), d)
    a = rng.uniform(-np.pi, np.pi, 64)
    turned = rotate(pose_3d, rotation_matrices(a, np.zeros(64), np.float64, pitch))
    np.testing.assert_allclose(np.angle(np.exp(1j * (facing(turned, pitch) - facing(pose_3d, pitch) - a))), 0,
                               atol=1e-9)


def test_facing_weights_follow_how_the_real_poses_face(rng):
    """Real poses all facing the camera: views turned side-on weigh next to nothing,
    views still facing the camera most; the weights average 1."""
    n = 200
    pose_2d = np.zeros((n, 17, 2))
    pose_2d[:, [4, 11], 0], pose_2d[:, [1, 14], 0] = 0.3, -0.3   # left at +x: facing the camera
    z_hat = 0.02 * rng.standard_normal((n, 17))
    a = np.where(np.arange(n) < n // 2, 0.1, np.pi / 2) * rng.choice([-1, 1], n)
    R = rotation_matrices(a, np.zeros(n), np.float64)
    view = cycle.random_view(pose_2d, z_hat, R)
    w = cycle.facing_weights(view, R)[:, 0]
    assert abs(w.mean() - 1) < 1e-12
    assert w[n // 2:].max() < 0.01 < 1.5 < w[:n // 2].min()  # (about 2: half the views)
    # at half strength, half of each weight is the uniform 1 (p_real / p_view: about 7 here,
    # in front): side views keep 1/2 against 1/2 7 + 1/2 in front
    half = cycle.facing_weights(view, R, strength=0.5)[:, 0]
    assert abs(half.mean() - 1) < 1e-12
    np.testing.assert_allclose(half[n // 2:] / half[:n // 2].mean(), 0.5 / (0.5 * 7 + 0.5), rtol=0.1)
