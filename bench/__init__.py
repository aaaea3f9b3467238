"""Benchmarks (``make bench``): they print numbers; nothing here asserts a timing."""
