"""The plain reference step (tips_np/method/reference_step.py) gives the fast path's numbers
(cycle.adversarial_step): the same losses, the same gradient of every parameter and
the same batch-norm statistics, for the same weights, batch, views and label flips.

The two differ only in how the same sums are grouped: the fast path calls each
group's network once on four stacked batches (its weight gradients are one product
over 4N rows, the reference's four products over N rows added), and adds the terms
of d L / d Y~ in another order. In float64 the losses come out equal and the gradients
differ by about 1e-15 of each one's largest entry (measured; in float32, at width 256
and batch 256, 1e-6), so rtol 1e-9 leaves room and still fails on any wrong term (a
1% change of one weight moves the gradients far more, as the last test shows)."""
import numpy as np
import pytest

from tips_np.method import cycle
from tips_np.method.geometry import rotation_matrices
from tips_np.method.model import Generator, init_networks, make_discriminator
from tips_np.method.reference_step import reference_step

RTOL, ATOL = 1e-9, 1e-12


def setup(parts, combine=False, n=48, seed=0):
    """float64 networks, a batch of normalised 2D poses, views and label flips."""
    rng = np.random.default_rng(seed)
    gen, disc = Generator(parts, combine, width=12, blocks=2), make_discriminator(12, 2)
    params, state = init_networks([gen, disc], rng, np.float64)
    for k in params:  # away from the initial (tiny) output layer, so every term matters
        params[k] = params[k] + 0.1 * rng.standard_normal(params[k].shape)
    pose = rng.uniform(-1, 1, (n, 17, 2))
    pose[:, 0] = 0
    pose /= np.abs(pose).max(axis=(1, 2), keepdims=True)
    azimuth, elevation, flip = cycle.draw_randomness(rng, n, np.pi)
    return gen, disc, params, state, pose, rotation_matrices(azimuth, elevation, np.float64, 0.2), flip


def both(parts, combine=False, **options):
    gen, disc, params, state, pose, R, flip = setup(parts, combine)
    state_fast, grads_fast = {k: v.copy() for k, v in state.items()}, {}
    objective = cycle.Objective(**options)
    fast = cycle.adversarial_step(gen, disc, params, pose, R, flip, grads_fast, objective, state=state_fast)
    reference, grads_ref = reference_step(gen, disc, params, state, pose, R, flip, objective)
    return (fast, grads_fast, state_fast), (reference, grads_ref, state)


@pytest.mark.parametrize("parts,combine,options", [
    (["torso", "legs"], False, {}),                                                  # TIPS, the papers' weights
    (["torso", "legs"], False, dict(gan="lsgan", perspective=5.5, adv_scale=7.5, real_label=0.8)),  # the cpu recipe
    (["full"], False, dict(w_90=1.5)),
    (["larm", "rarm", "torso", "lleg", "rleg"], True, dict(perspective=4.0)),        # split and recombine
])
def test_the_reference_step_gives_the_fast_steps_losses_gradients_and_statistics(parts, combine, options):
    (fast, grads_fast, state_fast), (reference, grads_ref, state_ref) = both(parts, combine, **options)
    assert reference.keys() == fast.keys()
    np.testing.assert_allclose(reference["D"], fast["D"], RTOL)
    for group in fast:
        if group != "D":
            assert reference[group].keys() == fast[group].keys()
            for term in fast[group]:
                np.testing.assert_allclose(reference[group][term], fast[group][term], RTOL, err_msg=f"{group}/{term}")
    assert grads_ref.keys() == grads_fast.keys() and any(k.startswith("D/") for k in grads_ref)
    for k in grads_fast:
        np.testing.assert_allclose(grads_ref[k], grads_fast[k], RTOL, ATOL, err_msg=k)
    for k in state_fast:
        np.testing.assert_allclose(state_ref[k], state_fast[k], RTOL, ATOL, err_msg=k)


def test_a_changed_weight_in_the_reference_is_caught():
    """The comparison can fail: w_90 changed on one side moves the gradients far
    beyond the tolerance (and the losses' totals)."""
    gen, disc, params, state, pose, R, flip = setup(["torso", "legs"])
    grads_fast = {}
    cycle.adversarial_step(gen, disc, params, pose, R, flip, grads_fast)
    changed = cycle.Objective(w_90=cycle.W_90 * 1.01)
    _, grads_ref = reference_step(gen, disc, params, dict(state), pose, R, flip, changed)
    worst = max(np.abs(grads_ref[k] - grads_fast[k]).max() / np.abs(grads_fast[k]).max()
                for k in grads_fast if k.startswith("G/"))
    assert worst > 1e3 * RTOL


def test_the_reference_refuses_the_terms_it_leaves_out():
    """w_inf and weigh_facing are the fast path's alone: the reference says so rather
    than return numbers without them."""
    gen, disc, params, state, pose, R, flip = setup(["torso", "legs"])
    for left_out in (dict(w_inf=1.0), dict(weigh_facing=0.5)):
        with pytest.raises(ValueError, match="leaves out w_inf and weigh_facing"):
            reference_step(gen, disc, params, dict(state), pose, R, flip, cycle.Objective(**left_out))
