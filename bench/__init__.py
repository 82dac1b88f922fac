"""Benchmarks: toonserve against the Flask + multiprocessing.Pool server it replaces, side by side in one run.

Beside them, the tools that drive a running service for the docs: bursts, the CLI against the API, a
person's first result, and the page's screenshot.
"""
