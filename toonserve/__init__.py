"""Operating toonserve: the command line, the retrying HTTP client, Serve config generation and Serve's REST API.

Nothing in core/, models/ or deployments/ imports this package.
"""
