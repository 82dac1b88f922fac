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
from core import imaging, matte
from core.art import FILTERS
from core.messages import MatteOptions
from models.animegan import ANIME_WEIGHTS, DEFAULT_ANIME_STYLE, AnimeGenerator
from models.u2net import ARCHITECTURES, U2NET_INPUT, U2NET_WEIGHTS
from models.weights import WeightsLocations

_MODELS: dict[str, nn.Module] = {}


def _load_models(weights_dir: str | None) -> None:
    """Pool initializer: every worker process loads every model once."""
    locations = WeightsLocations(weights_dir=Path(weights_dir) if weights_dir else None, download=False)
    _MODELS["anime"] = load_or_seed(AnimeGenerator(), ANIME_WEIGHTS.get(DEFAULT_ANIME_STYLE), locations)[0]
    for name in ("u2net_human_seg", "u2netp"):
        entry = U2NET_WEIGHTS.get(name)
        _MODELS[name] = load_or_seed(ARCHITECTURES[entry.architecture](), entry, locations)[0]


def _decode(data: bytes, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    picture = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    return np.asarray(picture), imaging.fit_within(picture.size, max_side)


def anime_job(data: bytes, max_side: int) -> bytes:
    image, size = _decode(data, max_side)
    work = imaging.fit_within((image.shape[1], image.shape[0]), min(512, max_side))
    work = (max(4, work[0] // 4 * 4), max(4, work[1] // 4 * 4))
    x = torch.from_numpy(imaging.resize(image, work).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    with torch.no_grad():
        y = _MODELS["anime"](x)
    styled = ((y[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    return imaging.encode(imaging.resize(styled, size), None, "png")


def art_job(data: bytes, max_side: int) -> dict[str, str]:
    image, size = _decode(data, max_side)
    image = imaging.resize(image, size)
    return {
        name: "data:image/png;base64," + base64.b64encode(imaging.encode(f.apply(image, f.params()), None, "png")).decode()
        for name, f in FILTERS.items()
    }


def matte_job(data: bytes, max_side: int, model: str) -> bytes:
    image, size = _decode(data, max_side)
    side = U2NET_INPUT.size
    x = torch.from_numpy(imaging.resize(image, (side, side)).copy()).permute(2, 0, 1)[None].float()
    mean = torch.tensor(U2NET_INPUT.mean or (0.0, 0.0, 0.0)).view(1, 3, 1, 1)
    std = torch.tensor(U2NET_INPUT.std or (1.0, 1.0, 1.0)).view(1, 3, 1, 1)
    with torch.no_grad():
        prediction = _MODELS[model]((x / x.max() - mean) / std)[0, 0]
    prediction = (prediction - prediction.min()) / (prediction.max() - prediction.min()).clamp_min(1e-8)
    alpha = matte.refine(imaging.resize(prediction.numpy(), size), MatteOptions())
    return imaging.encode(imaging.resize(image, size), matte.to_uint8(alpha), "png")


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
