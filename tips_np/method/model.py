"""The five 2D pose representations as lifting networks, and the discriminator.

A generator is a list of groups (name, joints, net): each group lifts its own
keypoints, z_hat[:, joints] = net(pose_2d[:, joints]) (eq. 1), and gets its own
losses. Independent parts ('torso,legs', the five limbs) are one group per part,
sharing nothing. 'full' and split-and-recombine are one group over all 16
keypoints; split-and-recombine's net encodes each part separately and a
combining network predicts every depth from the concatenated features.
"""
from typing import NamedTuple

import numpy as np

from ..backend import get_array_module, to_numpy
from ..errors import TipsError
from ..nn.mlp import MLP
from .skeleton import KEYPOINTS, MIRROR, PARTS

# The generators' final Linear starts at 1/100 of its He scale, so training starts
# from flat poses (z_hat ~ 0). At the full scale the tanh output starts at large
# random depths, which the consistency losses lock in before the (weakly weighted)
# adversarial loss can shape them: on the sample, P-MPJPE stayed at ~345 mm after
# 6 epochs, against ~150 mm (mirrored ~93 mm) with the small start.
OUT_SCALE = 0.01


class ConfigError(TipsError):
    """A combination of options that describes no model."""


def init_networks(nets, rng, dtype=np.float32):
    """The (params, state) dicts of several networks, initialised in order."""
    params, state = {}, {}
    for net in nets:
        p, s = net.init(rng, dtype)
        params.update(p)
        state.update(s)
    return params, state


class SplitCombine:
    """Split-and-recombine lifter: one encoder per part (its keypoints -> features,
    blocks_enc residual blocks), then a combining MLP (all features -> 16 depths)."""

    def __init__(self, name, parts, enc_width, width, enc_blocks, blocks, activation, dropout):
        self.name = name
        # columns of the flattened (N, 32) keypoint vector that each part reads
        self.columns = [np.array([2 * KEYPOINTS.index(j) + c for j in PARTS[p] for c in (0, 1)])
                        for p in parts]
        self.encoders = [MLP(f"{name}/{p}", len(cols), enc_width, enc_blocks, None, activation,
                             dropout=dropout) for p, cols in zip(parts, self.columns)]
        self.combiner = MLP(f"{name}/combine", enc_width * len(parts), width, blocks, len(KEYPOINTS),
                            activation, "tanh", dropout, OUT_SCALE)

    @property
    def output_layer(self):
        return self.combiner.output_layer

    def n_params(self):
        return sum(net.n_params() for net in self.encoders + [self.combiner])

    def init(self, rng, dtype=np.float32):
        return init_networks(self.encoders + [self.combiner], rng, dtype)

    def forward(self, params, x, train=True, state=None, rng=None, slices=1):
        xp = get_array_module(x)
        feats, caches = [], []
        for cols, enc in zip(self.columns, self.encoders):
            f, c = enc.forward(params, x[:, cols], train, state, rng, slices)
            feats.append(f)
            caches.append(c)
        y, c_comb = self.combiner.forward(params, xp.concatenate(feats, axis=1), train, state, rng, slices)
        return y, (caches, c_comb, x.shape)

    def backward(self, dy, cache, params, grads=None):
        xp = get_array_module(dy)
        caches, c_comb, shape = cache
        d_feats = self.combiner.backward(dy, c_comb, params, grads)
        dx = xp.zeros(shape, dy.dtype)
        w = self.encoders[0].width
        for i, (cols, enc, c) in enumerate(zip(self.columns, self.encoders, caches)):
            dx[:, cols] += enc.backward(d_feats[:, i * w:(i + 1) * w], c, params, grads)
        return dx


class Group(NamedTuple):
    """One generator network and the keypoints it lifts (and is judged on)."""
    name: str
    joints: list
    net: object


def _build_groups(parts, combine, width, blocks, activation, dropout):
    if parts == ["full"]:
        return [Group("full", KEYPOINTS, MLP("G/full", 2 * len(KEYPOINTS), width, blocks, len(KEYPOINTS),
                                             activation, "tanh", dropout, OUT_SCALE))]
    if combine:
        enc_blocks = max(blocks // 2, 1)
        net = SplitCombine("G/combine", parts, width, width, enc_blocks, blocks - enc_blocks,
                           activation, dropout)
        return [Group("combine", KEYPOINTS, net)]
    return [Group(p, PARTS[p], MLP(f"G/{p}", 2 * len(PARTS[p]), width, blocks, len(PARTS[p]),
                                   activation, "tanh", dropout, OUT_SCALE)) for p in parts]


def in_turn(fn, items, draws_random=False):
    """[fn(*item) for item in items]: a generator's groups run one after another (the
    default; a training loop may pass machine.side_by_side, with the same numbers)."""
    return [fn(*item) for item in items]


def count_params(nets):
    return sum(net.n_params() for net in nets)


class Generator:
    """The lifting network(s) of one representation.

    parts: ['full'], ['torso', 'legs'] (TIPS), or the five limbs; combine=True
    joins the parts' features in a combining network (split-and-recombine).
    match_params=True narrows every network so the representation has about as
    many parameters as a full-pose generator of the given width (the
    representations paper compares at near-identical parameter counts).
    run_groups(fn, items, draws_random) runs the groups' independent calls: in turn
    (in_turn), or each on its own core (machine.side_by_side, which train passes).
    """

    def __init__(self, parts, combine=False, width=256, blocks=2, activation="relu",
                 dropout=0.0, match_params=False, run_groups=in_turn):
        self.parts, self.combine, self.blocks, self.dropout = list(parts), bool(combine), blocks, dropout
        self.run_groups = run_groups
        if self.combine and self.parts == ["full"]:
            raise ConfigError("--combine needs a split representation (torso,legs or the five limbs): "
                              "the full pose has no parts to recombine")
        self.width = width
        if match_params and self.parts != ["full"]:
            def n(parts, w):
                return count_params(g.net for g in _build_groups(parts, combine, w, blocks, activation, dropout))
            target = n(["full"], width)
            self.width = min(range(8, 2 * width + 1, 8), key=lambda w: abs(target - n(self.parts, w)))
        self.groups = _build_groups(self.parts, combine, self.width, blocks, activation, dropout)

    def n_params(self):
        return count_params(g.net for g in self.groups)

    def init(self, rng, dtype=np.float32):
        return init_networks([g.net for g in self.groups], rng, dtype)

    @property
    def draws_random(self):
        """Whether a training call draws random numbers (dropout masks)."""
        return self.dropout > 0

    def lift(self, params, pose_2d, train=True, state=None, rng=None):
        """Eq. 1: pose_2d (N, 17, 2) -> z_hat (N, 17) (root depth 0), caches per group
        (the groups' networks called by run_groups)."""
        xp = get_array_module(pose_2d)
        n = len(pose_2d)
        z_hat = xp.zeros(pose_2d.shape[:2], pose_2d.dtype)
        out = self.run_groups(lambda joints, net: net.forward(params, pose_2d[:, joints].reshape(n, -1), train,
                                                              state, rng),
                              ((joints, net) for _, joints, net in self.groups), train and self.draws_random)
        for (_, joints, _), (z, _) in zip(self.groups, out):
            z_hat[:, joints] = z
        return z_hat, [c for _, c in out]


def predict_depths(gen, params, state, pose_2d, batch_size=8192, mirror_average=False):
    """z_hat (N, 17) for normalised 2D poses (host arrays in, host arrays out),
    the networks in evaluation mode (batch-norm running statistics).

    mirror_average: also lift each pose's mirror image (x -> -x, left and right
    swapped, skeleton.MIRROR), whose true depths are the pose's own with the joints
    swapped, and average the two z_hat: a test-time average, no training involved."""
    xp = get_array_module(next(iter(params.values())))
    out = []
    for i in range(0, len(pose_2d), batch_size):
        z, _ = gen.lift(params, xp.asarray(pose_2d[i:i + batch_size]), train=False, state=state)
        out.append(to_numpy(z))
    z_hat = np.concatenate(out)
    if mirror_average:
        mirrored = pose_2d[:, MIRROR] * np.array([-1, 1], dtype=pose_2d.dtype)
        z_hat = (z_hat + predict_depths(gen, params, state, mirrored, batch_size)[:, MIRROR]) / 2
    return z_hat


def make_discriminator(width, blocks, activation="leaky_relu"):
    """D: the full 16-keypoint 2D pose -> one logit (probability = sigmoid(logit)
    for the BCE loss; the raw value for LSGAN). One residual block fewer than the
    generators (TIPS), at least one."""
    return MLP("D", 2 * len(KEYPOINTS), width, max(blocks - 1, 1), 1, activation)


def build(config, run_groups=in_turn):
    """(generator, discriminator) of a run's config; a distilled student has none.
    run_groups: see Generator."""
    if config.get("w_inf") and config["combine"]:
        raise ConfigError("--w-inf needs independent networks: split and recombine has no tangent rule yet")
    gen = Generator(config["parts"], config["combine"], config["width"], config["blocks"],
                    config["activation"], config["dropout"], config["match_params"], run_groups)
    if config.get("teacher"):
        return gen, None
    return gen, make_discriminator(config["width"], config["blocks"])
