"""toonserve's Ray-free core: the effect catalogue, the pipeline that runs it, the model runner, codec, filters and errors."""
