"""Training and evaluation engine: loops, precision, checkpoints, metrics, distributed set-up.

Kept free of heavy imports so that importing a sub-module (e.g. ``engine.metrics``) stays cheap.
"""
