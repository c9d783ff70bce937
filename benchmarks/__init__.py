"""Benchmarks at production sizes (100,000 teachers), run by hand (``make bench-*``); not part of CI."""
