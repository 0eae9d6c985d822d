"""facebench: face-detection benchmarks with numbers identical to the official tools."""

__version__ = "0.1.0"
