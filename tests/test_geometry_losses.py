"""Geometry and losses: known values, and gradients by central differences."""
import numpy as np
import pytest

from tips_np.method import geometry, losses
from tips_np.nn.gradcheck import numerical_gradient, relative_error

TOL = 1e-6


def test_rotation_is_orthonormal_and_inverse_is_transpose(rng):
    a, e = rng.uniform(-np.pi, np.pi, 6), rng.uniform(-0.17, 0.17, 6)
    R = geometry.rotation_matrices(a, e, np.float64)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)
    pose = rng.standard_normal((6, 17, 3))
    np.testing.assert_allclose(geometry.rotate(geometry.rotate(pose, R), R.transpose(0, 2, 1)), pose, atol=1e-12)


def test_quarter_turn_about_the_vertical_gives_the_90_degree_pose(rng):
    """The 90-degree constraints rest on (x, y, z) -> (z, y, -x) (TIPS Fig. 2)."""
    pose = rng.standard_normal((1, 17, 3))
    R = geometry.rotation_matrices(np.array([-np.pi / 2]), np.array([0.0]), np.float64)
    turned = geometry.rotate(pose, R)
    np.testing.assert_allclose(turned[..., 0], pose[..., 2], atol=1e-12)
    np.testing.assert_allclose(turned[..., 1], pose[..., 1], atol=1e-12)
    np.testing.assert_allclose(turned[..., 2], -pose[..., 0], atol=1e-12)


def test_a_pitched_view_turns_about_the_bodys_axis(rng):
    """A camera looking down 12 degrees sees the body's up axis tilted in depth:
    with pitch 12 degrees every azimuth keeps that axis where it was (upright in the
    image, no sideways lean); about the camera's axis it leans by up to 12 degrees.
    The rotations stay orthonormal, and pitch 0 is the camera's axis exactly."""
    a, e = rng.uniform(-np.pi, np.pi, 50), np.zeros(50)
    p = np.radians(12)
    up = np.array([0.0, -np.cos(p), -np.sin(p)])   # image y points down; the top is nearer the camera
    R = geometry.rotation_matrices(a, e, np.float64, p)
    np.testing.assert_allclose(R @ up, np.broadcast_to(up, (50, 3)), atol=1e-12)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    lean = np.degrees(np.abs(np.arctan2((geometry.rotation_matrices(a, e, np.float64) @ up)[:, 0], np.cos(p))))
    assert lean.max() > 11
    e = rng.uniform(-0.2, 0.2, 50)
    np.testing.assert_array_equal(geometry.rotation_matrices(a, e, np.float64, 0.0),
                                  geometry.rotation_matrices(a, e, np.float64))


def test_rotation_matrices_keep_the_pose_dtype():
    R = geometry.rotation_matrices(np.array([0.3]), np.array([0.1]), np.float32)
    assert R.dtype == np.float32


@pytest.mark.gradcheck
def test_rotate_gradient(rng):
    R = geometry.rotation_matrices(rng.uniform(-3, 3, 4), rng.uniform(-0.2, 0.2, 4), np.float64)
    pose, d = rng.standard_normal((4, 17, 3)), rng.standard_normal((4, 17, 3))
    num = numerical_gradient(lambda: np.sum(d * geometry.rotate(pose, R)), pose)
    assert relative_error(geometry.rotate_backward(d, R), num) < TOL


@pytest.mark.gradcheck
def test_max_normalise_values_and_gradient(rng):
    pose = rng.standard_normal((5, 17, 2))
    y, s, cache = geometry.max_normalise(pose)
    np.testing.assert_allclose(np.abs(y).max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(y * s[:, None, None], pose)
    dy, ds = rng.standard_normal(y.shape), rng.standard_normal(5)
    f = lambda: np.sum(dy * geometry.max_normalise(pose)[0]) + np.sum(ds * geometry.max_normalise(pose)[1])
    num = numerical_gradient(f, pose)
    assert relative_error(geometry.max_normalise_backward(dy, ds, cache), num) < TOL


@pytest.mark.gradcheck
def test_reprojection_loss(rng):
    a, b = rng.standard_normal((3, 17, 2)), rng.standard_normal((3, 17, 2))
    joints = [1, 4, 7]
    loss, g = losses.reprojection_loss(a, b, joints)
    assert np.isclose(loss, np.sum((a[:, joints] - b[:, joints]) ** 2) / (3 * 3))
    assert np.all(g[:, [0, 2, 3]] == 0)  # keypoints of other parts get nothing
    assert relative_error(g, numerical_gradient(lambda: losses.reprojection_loss(a, b, joints)[0], b)) < TOL


@pytest.mark.gradcheck
def test_ninety_degree_loss(rng):
    turned, target = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    loss, d_turned, d_target = losses.ninety_degree_loss(turned, target)
    assert np.isclose(loss, np.sum((turned - target) ** 2) / 24)
    for arr, g in ((turned, d_turned), (target, d_target)):
        num = numerical_gradient(lambda: losses.ninety_degree_loss(turned, target)[0], arr)
        assert relative_error(g, num) < TOL
    # a consistent generator meets all three: G(z, y) = -x, G(-z, y) = x, G(-x, y) = -z
    x, z = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    for g_out, t in ((-x, -x), (x, x), (-z, -z)):
        assert losses.ninety_degree_loss(g_out, t)[0] == 0


@pytest.mark.gradcheck
@pytest.mark.parametrize("kind", ["bce", "lsgan"])
def test_adversarial_losses(rng, kind):
    fake, real = rng.standard_normal((6, 1)) * 3, rng.standard_normal((6, 1)) * 3
    loss, g = losses.generator_adversarial_loss(fake, kind)
    num = numerical_gradient(lambda: losses.generator_adversarial_loss(fake, kind)[0], fake)
    assert relative_error(g, num) < TOL
    t_real, t_fake = np.array([[1.0], [1], [0], [1], [1], [1]]), np.array([[0.0], [0], [0], [1], [0], [0]])
    for w in (None, rng.uniform(0, 2, (6, 1))):  # unweighted, and each fake's term weighed
        loss, g_real, g_fake = losses.discriminator_loss(real, fake, t_real, t_fake, kind, w)
        for arr, g in [(real, g_real), (fake, g_fake)]:
            num = numerical_gradient(lambda: losses.discriminator_loss(real, fake, t_real, t_fake, kind, w)[0], arr)
            assert relative_error(g, num) < TOL


def test_bce_matches_its_definition(rng):
    logits = rng.standard_normal((5, 1))
    d = 1 / (1 + np.exp(-logits))
    loss, _ = losses.generator_adversarial_loss(logits, "bce")
    assert np.isclose(loss, -np.mean(np.log(d)))
    t = np.array([[1.0], [0], [1], [0], [1]])
    loss, _, _ = losses.discriminator_loss(logits, logits, t, 1 - t, "bce")
    bce = lambda t, w=1: -np.mean(w * (t * np.log(d) + (1 - t) * np.log(1 - d)))
    assert np.isclose(loss, bce(t) + bce(1 - t))
    w = rng.uniform(0, 2, (5, 1))  # weights on the fakes' terms only
    loss, _, _ = losses.discriminator_loss(logits, logits, t, 1 - t, "bce", w)
    assert np.isclose(loss, bce(t) + bce(1 - t, w))


def test_unknown_gan_loss_is_refused():
    with pytest.raises(ValueError, match="bce"):
        losses.generator_adversarial_loss(np.zeros((2, 1)), "wgan")


@pytest.mark.gradcheck
def test_distillation_loss(rng):
    s, t = rng.standard_normal((4, 16)), rng.standard_normal((4, 16))
    loss, g = losses.distillation_loss(s, t)
    assert np.isclose(loss, np.mean((s - t) ** 2))
    assert relative_error(g, numerical_gradient(lambda: losses.distillation_loss(s, t)[0], s)) < TOL


@pytest.mark.gradcheck
@pytest.mark.parametrize("depth", [None, 5.5])
def test_view_projection_round_trip_and_gradients(rng, depth):
    pose = rng.uniform(-1, 1, (4, 17, 3))
    uv, cache = geometry.project_view(pose, depth)
    np.testing.assert_allclose(geometry.unproject_view(uv, pose[..., 2], depth), pose, atol=1e-12)
    d2 = rng.standard_normal(uv.shape)
    num = numerical_gradient(lambda: np.sum(d2 * geometry.project_view(pose, depth)[0]), pose)
    assert relative_error(geometry.project_view_backward(d2, cache, depth), num) < TOL
    z = pose[..., 2].copy()
    d3 = rng.standard_normal(pose.shape)
    d_uv, d_z = geometry.unproject_view_backward(d3, uv, z, depth)
    f = lambda: np.sum(d3 * geometry.unproject_view(uv, z, depth))
    assert relative_error(d_uv, numerical_gradient(f, uv)) < TOL
    assert relative_error(d_z, numerical_gradient(f, z)) < TOL


def test_perspective_makes_near_joints_larger():
    near, far = np.array([[[0.5, 0.5, -1.0]]]), np.array([[[0.5, 0.5, 1.0]]])
    assert geometry.project_view(near, 5.0)[0][0, 0, 0] > 0.5 > geometry.project_view(far, 5.0)[0][0, 0, 0]
