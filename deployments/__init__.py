"""Thin Ray Serve shells around the plain classes in core/; only the ingress speaks HTTP."""
