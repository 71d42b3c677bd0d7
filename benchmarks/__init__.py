"""Benchmarks: each one measures Livebase against a reference in the same run and reports
ratios (see docs/benchmarks.md). Nothing here is imported by the service or the tests."""
