"""The server toonserve replaces, rebuilt faithfully: Flask (threaded) in front of a multiprocessing.Pool.

One process per core, each model loaded once per process, fp32 NCHW, torch's default threading,
one image per call; the four OpenCV filters applied one after another in one request; matting one
image per call. Decoding, resizing and encoding do what toonserve does, so that only the serving
architecture and the model execution differ.

    python -m bench.baseline --port 8100
"""

from __future__ import annotations

import argparse
import base64
import io
import logging
import multiprocessing
import os
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np
import torch
from flask import Flask, Response, jsonify, request
from PIL import Image, ImageOps
from torch import nn

from bench.raw import load_or_seed
from core import alpha, imaging
from core.art import FILTERS
from models.animegan import ANIME_WEIGHTS
from models.registry import WeightsEntry
from models.u2net import U2NET_WEIGHTS
from models.weights import WeightsLocations

_MODELS: dict[str, nn.Module] = {}
_ANIME = ANIME_WEIGHTS.get(ANIME_WEIGHTS.default)


def _load_models(weights_dir: str | None) -> None:
    """Pool initializer: every worker process loads every model once."""
    locations = WeightsLocations(weights_dir=Path(weights_dir) if weights_dir else None, download=False)
    for entry in (_ANIME, U2NET_WEIGHTS.get("u2net_human_seg"), U2NET_WEIGHTS.get("u2netp")):
        _MODELS[entry.name] = load_or_seed(entry, locations)[0]


def _decode(data: bytes, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    picture = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return np.asarray(picture), imaging.fit_within(picture.size, max_side)


def _infer(entry: WeightsEntry, image: np.ndarray, max_side: int) -> np.ndarray:
    """One image through the entry's model, fp32 NCHW, prepared as its transforms say."""
    work = entry.transforms.working_size((image.shape[1], image.shape[0]), min(entry.transforms.side, max_side))
    x = entry.transforms.to_input(torch.from_numpy(imaging.resize(image, work).copy())[None]).contiguous()
    with torch.no_grad():
        return entry.transforms.to_output(_MODELS[entry.name](x))[0].numpy()


def anime_job(data: bytes, max_side: int) -> bytes:
    image, size = _decode(data, max_side)
    return imaging.encode(imaging.resize(_infer(_ANIME, image, max_side), size), None, "png")


def art_job(data: bytes, max_side: int) -> dict[str, str]:
    image, size = _decode(data, max_side)
    image = imaging.resize(image, size)
    return {
        f.name: "data:image/png;base64," + base64.b64encode(imaging.encode(f.apply(image, f.params()), None, "png")).decode()
        for f in FILTERS
    }


def matte_job(data: bytes, max_side: int, model: str) -> bytes:
    image, size = _decode(data, max_side)
    weight = alpha.refine(_infer(U2NET_WEIGHTS.get(model), image, max_side), size)
    return imaging.encode(imaging.resize(image, size), alpha.to_uint8(weight), "png")


def create_app(pool: Pool) -> Flask:
    app = Flask("baseline")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.post("/v1/anime")
    def anime() -> Response:
        data = pool.apply(anime_job, (request.get_data(), int(request.args.get("max_side", 1024))))
        return Response(data, mimetype="image/png")

    @app.post("/v1/art")
    def art() -> Response:
        return jsonify(images=pool.apply(art_job, (request.get_data(), int(request.args.get("max_side", 1024)))))

    @app.post("/v1/matte")
    def matte_route() -> Response:
        args = (request.get_data(), int(request.args.get("max_side", 1024)), request.args.get("model", "u2net_human_seg"))
        return Response(pool.apply(matte_job, args), mimetype="image/png")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    weights_dir = os.environ.get("TOONSERVE_WEIGHTS_DIR")
    with multiprocessing.get_context("spawn").Pool(args.processes, initializer=_load_models, initargs=(weights_dir,)) as pool:
        create_app(pool).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
