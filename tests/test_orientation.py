"""The depth sign decided by anatomy: the handedness tests, the exact flip, the
symmetry it rests on, and orientation inside training."""
import numpy as np
import pytest

from tips_np.io import dataset, lifting
from tips_np.method import cycle
from tips_np.method.distill import distill_step
from tips_np.method.geometry import compose, rotation_matrices
from tips_np.method.model import Generator, make_discriminator
from tips_np.method.orientation import (TESTS, decide, flip_group, orient, orientation_poses,
                                        per_pose_correction, pass_rates)
from tips_np.nn.adam import Adam

MIRROR = np.array([1.0, 1.0, -1.0])


def test_handedness_of_human36m_ground_truth(sample_path):
    pose = dataset.load(sample_path, "test").pose_3d.astype(np.float64)
    shares, mirrored = pass_rates(pose), pass_rates(pose * MIRROR)
    assert shares["legs"] > 0.99 and shares["torso"] > 0.99
    assert shares["larm"] > 0.6 and shares["rarm"] > 0.6
    for name, (test, _) in TESTS.items():  # a mirror reverses every test exactly
        np.testing.assert_allclose(test(pose * MIRROR), -test(pose), atol=1e-6)
        assert mirrored[name] == pytest.approx(1 - shares[name], abs=1e-3)


@pytest.mark.parametrize("parts,combine", [(["torso", "legs"], False), (["full"], False),
                                           (["torso", "legs"], True)])
def test_a_flip_negates_a_groups_depths_exactly(rng, parts, combine):
    gen = Generator(parts, combine, width=8, blocks=1)
    params, _ = gen.init(rng)
    for k in params:
        params[k] += 0.3 * rng.standard_normal(params[k].shape).astype(np.float32)
    pose = rng.uniform(-1, 1, (20, 17, 2)).astype(np.float32)
    z, _ = gen.lift(params, pose)
    m = {f"m/{k}": rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    m_before = {k: v.copy() for k, v in m.items()}
    (name, joints, net), others = gen.groups[0], [j for g in gen.groups[1:] for j in g.joints]
    flip_group(net, params, m)
    z2, _ = gen.lift(params, pose)
    np.testing.assert_array_equal(z2[:, joints], -z[:, joints])
    np.testing.assert_array_equal(z2[:, others], z[:, others])
    for k in m:
        flipped = k.startswith(f"m/{net.output_layer}/")
        np.testing.assert_array_equal(m[k], -m_before[k] if flipped else m_before[k])


def step_losses(gen, disc, params, pose, azimuth, elevation):
    R = rotation_matrices(azimuth, elevation, np.float64)
    flip = np.arange(len(pose)) % 4 == 0
    losses = cycle.flatten_losses(cycle.adversarial_step(gen, disc, params, pose, R, flip, {}))
    return {k: float(v) for k, v in losses.items()}


def setup(rng, parts, n=12):
    gen, disc = Generator(parts, width=8, blocks=1), make_discriminator(8, 2)
    params, _ = gen.init(rng, np.float64)
    params.update(disc.init(rng, np.float64)[0])
    for k in params:
        params[k] += 0.2 * rng.standard_normal(params[k].shape)
    pose = np.zeros((n, 17, 2))
    pose[:, 1:, 0] = rng.uniform(-0.3, 0.3, (n, 16))   # narrow in x,
    pose[:, 1:, 1] = rng.uniform(-0.9, 0.9, (n, 16))   # tall in y: max |y| = 1 sets the scale
    pose[:, 3, 1], pose[:, 10, 1] = 1.0, -1.0          # ankle and head
    return gen, disc, params, pose


@pytest.mark.parametrize("parts", [["torso", "legs"], ["full"], ["larm", "rarm", "spine", "lleg", "rleg"]])
def test_flipping_every_group_with_mirrored_views_keeps_every_loss(rng, parts):
    """The exact symmetry: z_hat -> -z_hat with (a, e) -> (-a, -e)."""
    gen, disc, params, pose = setup(rng, parts)
    azimuth, elevation = rng.uniform(-np.pi, np.pi, len(pose)), rng.uniform(-0.17, 0.17, len(pose))
    before = step_losses(gen, disc, params, pose, azimuth, elevation)
    for _, _, net in gen.groups:
        flip_group(net, params)
    after = step_losses(gen, disc, params, pose, -azimuth, -elevation)
    assert before.keys() == after.keys()
    for k in before:
        assert after[k] == pytest.approx(before[k], rel=1e-10, abs=1e-14), k
    unmirrored = step_losses(gen, disc, params, pose, azimuth, elevation)  # the views matter
    assert unmirrored["torso/l2d" if "torso" in gen.parts else f"{gen.parts[0]}/l2d"] != pytest.approx(
        before["torso/l2d" if "torso" in gen.parts else f"{gen.parts[0]}/l2d"], rel=1e-6)


def test_one_group_flipped_alone_keeps_its_own_consistency_but_not_the_adversarial_loss(rng):
    """Torso flipped, legs kept, views mirrored (elevation 0, so the tall poses'
    normalising scale is the same): the torso's L2D and L90 are unchanged, but the
    discriminator sees a torso facing one way on legs facing the other."""
    gen, disc, params, pose = setup(rng, ["torso", "legs"])
    azimuth, elevation = rng.uniform(-np.pi, np.pi, len(pose)), np.zeros(len(pose))
    for k in params:
        if "fc_out" in k and k.startswith("G/"):
            params[k] *= 0.2                     # shallower depths
    z, _ = gen.lift(params, pose)
    assert np.abs(pose[..., 0]).max() + np.abs(z).max() < 1  # rotated x stays inside the scale
    before = step_losses(gen, disc, params, pose, azimuth, elevation)
    flip_group(gen.groups[0][2], params)
    after = step_losses(gen, disc, params, pose, -azimuth, elevation)
    for k in ("torso/l2d", "torso/l90", "legs/l90"):
        assert after[k] == pytest.approx(before[k], rel=1e-10), k
    for k in ("legs/l2d", "torso/adv", "D"):
        assert after[k] != pytest.approx(before[k], rel=1e-6), k


def true_depths(data):
    """Ground-truth depths in the normalised 2D units (per pose, the least-squares
    scale between the 3D x, y in mm and the normalised 2D)."""
    p3, p2 = data.pose_3d.astype(np.float64), data.pose_2d.astype(np.float64)
    s = (p3[..., :2] * p2).sum(axis=(1, 2)) / (p2 * p2).sum(axis=(1, 2))
    return (p3[..., 2] / s[:, None]).astype(np.float32)


@pytest.fixture(scope="module")
def supervised_model():
    """A full-pose lifter fitted to the true depths of the sample's training poses."""
    import os
    from conftest import SAMPLE
    assert os.path.exists(SAMPLE)
    train = dataset.load(SAMPLE, "train")
    z = true_depths(train)
    rng = np.random.default_rng(0)
    gen = Generator(["full"], width=64, blocks=1)
    params, state = gen.init(rng)
    opt = Adam(1e-3)
    for _ in range(3):
        for idx in train.batches(256, rng):
            distill_step(gen, params, state, opt, train.pose_2d[idx], z[idx])
    return gen, params, state, orientation_poses(train.pose_2d)


def test_a_mirrored_network_is_flipped_and_a_right_one_is_not(supervised_model):
    gen, params, state, pose_2d = supervised_model
    params = {k: v.copy() for k, v in params.items()}
    original = {k: v.copy() for k, v in params.items()}
    report = orient(gen, params, state, pose_2d)
    assert not report["full"]["flipped"] and report["full"]["share"] > 0.8
    flip_group(gen.groups[0][2], params)                     # deliberately mirrored
    report = orient(gen, params, state, pose_2d)
    assert report["full"]["flipped"] and report["full"]["share"] > 0.8
    for k in params:                                          # flipped back exactly
        np.testing.assert_array_equal(params[k], original[k])
    flip_group(gen.groups[0][2], params)
    assert not orient(gen, params, state, pose_2d, flip=False)["full"]["flipped"]  # a check only


def test_a_group_near_one_half_is_not_flipped(supervised_model):
    gen, _, _, pose_2d = supervised_model
    half = np.zeros((len(pose_2d), 17))             # flat poses pass no test either way
    assert decide(gen, half, pose_2d)[0] == (1,)
    z = np.random.default_rng(1).standard_normal((len(pose_2d), 17))   # random depths
    signs, shares = decide(gen, z, pose_2d)
    assert signs == (1,) and abs(shares[0] - 0.5) < 0.1


def test_per_pose_correction_flips_only_the_failing_part(sample_path):
    test = dataset.load(sample_path, "test")
    z = true_depths(test)[:200]
    legs = [1, 2, 3, 4, 5, 6]
    wrong = z.copy()
    wrong[::2, legs] *= -1                          # every other pose's legs mirrored
    fixed, flipped = per_pose_correction(test.pose_2d[:200], wrong)
    np.testing.assert_allclose(fixed, z, atol=1e-6)
    assert flipped["legs"] == pytest.approx(0.5, abs=0.02) and flipped["torso"] < 0.02


def test_without_a_nose_the_torso_is_told_by_the_chest_behind_the_hip_head_line(tmp_path):
    """MPII's keypoints have no nose: mapped into the 17 joints, the neck/nose lies on the
    thorax-head line, where the nose test passes 36 % of the sample's true poses (it would
    flip a right torso); the test without a nose reads joints MPII has, and train uses it
    for a file prepared from MPII keypoints."""
    from tips_np.method.orientation import J, TESTS_NO_NOSE, tests_for, torso_test, torso_test_no_nose
    pose = dataset.load(None, "train").pose_3d.astype(np.float64)
    no_nose = pose.copy()
    no_nose[:, J["neck"]] = (2 * no_nose[:, J["thorax"]] + no_nose[:, J["head"]]) / 3
    mirrored = no_nose * np.array([1, 1, -1])
    assert np.mean(torso_test(no_nose) > 0) < 0.5 < np.mean(torso_test(mirrored) > 0)
    assert np.mean(torso_test_no_nose(no_nose) > 0) > 0.75 > 0.25 > np.mean(torso_test_no_nose(mirrored) > 0)
    assert tests_for("mpii") is TESTS_NO_NOSE and tests_for("coco17") is tests_for("h36m") is TESTS
    pixels = dataset.load(None, "train").pose_2d[:50] * 100 + 500
    poses = lifting.Poses(pixels=pixels, frame=list(range(50)), person=[0] * 50, filled=None, keypoints="mpii")
    dataset.prepare_2d(poses, str(tmp_path / "mine.h5"), "mine.json")
    assert dataset.load(str(tmp_path / "mine.h5"), "train").keypoints == "mpii"
    assert dataset.load(None, "train").select(slice(3)).keypoints == "h36m"
