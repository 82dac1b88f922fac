"""Thin Ray Serve shells around the plain classes in toonserve/; only the ingress speaks HTTP."""
