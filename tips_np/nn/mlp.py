"""The papers' fully connected network (after Martinez et al.):

    Linear -> BN -> act [-> dropout],  K residual blocks of width W,
    final Linear,  optional output activation (tanh for the generators).

An MLP object holds only the structure. Parameters, gradients, Adam's moments
and batch-norm running statistics live in flat dicts keyed by one path scheme:
'{name}/fc_in/W', '{name}/bn_in/gamma', '{name}/block0/fc1/W', '{name}/fc_out/b'.
A forward returns the cache its backward consumes, so one network may be called
several times before any backward, and parameter gradients of the calls add up.
"""
import numpy as np

from ..backend import get_array_module
from .activations import ACTIVATIONS, TANGENTS
from .batchnorm import batchnorm_init
from .dense import accumulate, dense_backward, dense_dual_backward, dense_forward, dense_tangent
from .dropout import dropout_mask
from .linear import linear_backward, linear_dual_backward, linear_forward, linear_init, linear_tangent
from .residual import residual_backward, residual_dual_backward, residual_forward, residual_tangent


class MLP:
    def __init__(self, name, d_in, width, blocks, d_out=None, activation="relu",
                 out_activation=None, dropout=0.0, out_scale=1.0):
        """d_out=None ends the network after the last block (a feature encoder).
        out_scale multiplies the He-initialised weights of the final Linear."""
        self.name, self.d_in, self.width, self.blocks = name, d_in, width, blocks
        self.d_out, self.activation, self.out_activation = d_out, activation, out_activation
        self.dropout, self.out_scale = dropout, out_scale

    @property
    def out_dim(self):
        return self.width if self.d_out is None else self.d_out

    def _units(self):
        """(fc, bn, d_in) of every dense unit, in order."""
        units = [(f"{self.name}/fc_in", f"{self.name}/bn_in", self.d_in)]
        for k in range(self.blocks):
            for j in (1, 2):
                units.append((f"{self.name}/block{k}/fc{j}", f"{self.name}/block{k}/bn{j}", self.width))
        return units

    @property
    def output_layer(self):
        """The final Linear's name (a generator's depths are tanh of its output)."""
        return f"{self.name}/fc_out"

    def n_params(self):
        n = sum(d_in * self.width + 2 * self.width for _, _, d_in in self._units())  # W, gamma, beta
        return n + (0 if self.d_out is None else (self.width + 1) * self.d_out)

    def init(self, rng, dtype=np.float32):
        """Return (params, state): He-initialised weights, BN gamma=1, beta=0."""
        params, state = {}, {}
        for fc, bn, d_in in self._units():
            params[f"{fc}/W"] = linear_init(rng, d_in, self.width, dtype, bias=False)["W"]
            p, s = batchnorm_init(self.width, dtype)
            params.update({f"{bn}/{k}": v for k, v in p.items()})
            state.update({f"{bn}/{k}": v for k, v in s.items()})
        if self.d_out is not None:
            for k, v in linear_init(rng, self.width, self.d_out, dtype).items():
                params[f"{self.name}/fc_out/{k}"] = v
            params[f"{self.name}/fc_out/W"] *= dtype(self.out_scale)
        return params, state

    def forward(self, params, x, train=True, state=None, rng=None, slices=1):
        """x: (N, d_in) -> (y, cache).

        train=True uses batch statistics and, if `state` is given, updates its
        running statistics; train=False uses them. `rng` draws dropout masks
        (training only, when dropout > 0). slices > 1: x is that many calls'
        inputs stacked, each batch-normalised with its own statistics (the
        backward takes their stacked gradients; parameter gradients add up).
        """
        masks = self._dropout_masks(rng, x) if (train and self.dropout > 0) else [None] * (1 + 2 * self.blocks)
        fc, bn, _ = self._units()[0]
        h, c_in = dense_forward(params, fc, bn, x, self.activation, train, state, masks[0], slices)
        c_blocks = []
        for k in range(self.blocks):
            h, c = residual_forward(params, f"{self.name}/block{k}", h, self.activation, train, state,
                                    masks[1 + 2 * k: 3 + 2 * k], slices)
            c_blocks.append(c)
        c_out, y_out = None, None
        if self.d_out is not None:
            h, c_out = linear_forward(h, params[f"{self.name}/fc_out/W"], params[f"{self.name}/fc_out/b"])
            if self.out_activation is not None:
                h = y_out = ACTIVATIONS[self.out_activation][0](h)
        return h, (c_in, c_blocks, c_out, y_out)

    def _dropout_masks(self, rng, x):
        """One keep-mask per dense unit, drawn on the host by the caller's generator."""
        xp = get_array_module(x)
        return [xp.asarray(dropout_mask(rng, (x.shape[0], self.width), self.dropout, x.dtype))
                for _ in range(1 + 2 * self.blocks)]

    def backward(self, dy, cache, params, grads=None):
        """Return dx; add parameter gradients into grads (skipped when None:
        e.g. the discriminator when only the generator's input gradient is wanted)."""
        c_in, c_blocks, c_out, y_out = cache
        dh = dy
        if c_out is not None:
            if self.out_activation is not None:
                dh = ACTIVATIONS[self.out_activation][1](dh, y_out)
            dh, g = linear_backward(dh, c_out, grads is not None)
            if grads is not None:
                accumulate(grads, f"{self.name}/fc_out", g)
        for c in reversed(c_blocks):
            dh = residual_backward(dh, c, grads)
        return dense_backward(dh, c_in, grads)

    def tangent(self, t, cache):
        """Forward mode: the tangent of the output along the input tangent t (N, d_in),
        on the cache of the forward it differentiates (the Jacobian-vector product
        J_x net . t, batch statistics included). Returns (t_out, tangent cache)."""
        c_in, c_blocks, c_out, y_out = cache
        t_h, tc_in = dense_tangent(t, c_in)
        tc_blocks = []
        for c in c_blocks:
            t_h, tc = residual_tangent(t_h, c)
            tc_blocks.append(tc)
        t_lin = t_out = None
        if c_out is not None:
            t_lin = t_out = linear_tangent(t_h, c_out)
            if self.out_activation is not None:
                t_out = TANGENTS[self.out_activation][0](t_lin, y_out)
        return (t_h if c_out is None else t_out), (tc_in, tc_blocks, t_h, t_lin)

    def dual_backward(self, dy, dt_out, cache, t_cache, params, grads):
        """Backward of (y, t_out), the output and its tangent: returns (dx, dt) and
        adds parameter gradients into grads. dy None: only t_out is differentiated."""
        c_in, c_blocks, c_out, y_out = cache
        tc_in, tc_blocks, t_h, t_lin = t_cache
        xp = get_array_module(dt_out)
        dh = xp.zeros_like(dt_out) if dy is None else dy
        dt_h = dt_out
        if c_out is not None:
            if self.out_activation is not None:
                dt_lin, dy_extra = TANGENTS[self.out_activation][1](dt_out, t_lin, y_out)
                dh = ACTIVATIONS[self.out_activation][1](dh if dy_extra is None else dh + dy_extra, y_out)
            else:
                dt_lin = dt_out
            dh, dt_h, g = linear_dual_backward(dh, dt_lin, c_out, t_h)
            accumulate(grads, f"{self.name}/fc_out", g)
        for c, tc in zip(reversed(c_blocks), reversed(tc_blocks)):
            dh, dt_h = residual_dual_backward(dh, dt_h, c, tc, grads)
        return dense_dual_backward(dh, dt_h, c_in, tc_in, grads)
