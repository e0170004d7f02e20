"""The tools around the method: the training loop (train), evaluation and tables,
studies, fitting adapters, the benchmark, the gradient-check table, pictures (draw),
and the machine tuning of a CPU run (machine), which the method does not import.

May import anything in the package but the command line (tests/test_layout.py).
"""
