"""Tests of nnbuild.check: comparison, reports, suggest-hp, task metrics."""
