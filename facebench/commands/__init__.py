"""Click commands, one module per command family (imported lazily by facebench.cli)."""
