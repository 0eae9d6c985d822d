"""Benchmark protocols: each reads ground truth once, evaluates predictions, returns a typed result."""
