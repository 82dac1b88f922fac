"""toonserve's Ray-free core: errors, settings, image codec, art filters, matte post-processing."""
