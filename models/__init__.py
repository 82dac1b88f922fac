"""Model architectures, their weights registries and the weights resolver (no Ray here)."""
