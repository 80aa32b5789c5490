"""Pure reward functions: answer parsing, outcome verifiers, process scores, mixing, advantages.

Nothing here does I/O or loads models; every function is unit-tested with hand-computed cases.
"""
