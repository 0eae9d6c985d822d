"""Registered face detectors (see detectors.registry)."""
