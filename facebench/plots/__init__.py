"""matplotlib figures in the style of the benchmarks' papers (imported lazily, Agg backend)."""
