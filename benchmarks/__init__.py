"""Benchmarks of retinakit: thin scripts by question over one shared harness (:mod:`benchmarks.harness`).

Run them as modules from the repository root, e.g. ``python -m benchmarks.speed.latency``; the index of
every script and the question it answers is ``benchmarks/README.md``.
"""
