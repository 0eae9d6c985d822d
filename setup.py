"""Build hook for the optional compiled number-table parser; everything else is in pyproject.toml."""

from setuptools import Extension, setup

# optional: without a C compiler the install still succeeds and facebench parses with numpy instead.
setup(ext_modules=[Extension("facebench._numtable", ["facebench/_numtable.c"], optional=True)])
