"""The method: the papers' equations, each with one home. The 17 joints and the parts
(skeleton), rotation and projection (geometry), the losses, the networks (model), one
training step written plainly (reference_step) and fast (cycle), the depth sign from
anatomy (orientation), distillation, and the 2D adapter.

May import only nn/, backend, errors and other modules of method/ (tests/test_layout.py):
nothing about files, formats, training loops or the machine.
"""
