"""Helpers shared by the test suites and the benchmarks (benchmarks/ imports them as tests.helpers)."""
