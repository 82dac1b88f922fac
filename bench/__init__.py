"""Benchmarks: toonserve against the Flask + multiprocessing.Pool server it replaces, side by side in one run."""
