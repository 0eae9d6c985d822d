"""`python -m facebench` (and `torchrun -m facebench`) runs the CLI."""

from facebench.cli import main

main()
