from __future__ import annotations

from ray import serve

from core.memory import trims_after
from core.messages import Encoded, MatteOptions, OutputFormat, Prepared, Rendered, WorkingSize
from core.preprocess import ImageProcessor
from core.settings import Settings
from deployments.scaling import bursty


# A full queue makes the ingress answer 503 overloaded with Retry-After, instead of waiting unboundedly.
@serve.deployment(
    ray_actor_options={"num_cpus": 0.2},
    max_ongoing_requests=16,
    max_queued_requests=32,
    autoscaling_config=bursty(1, 2, 4),
    health_check_period_s=10,
)
class Preprocessor:
    """Decode, resize and encode, so that the model replicas do model work only."""

    def __init__(self, settings: Settings) -> None:
        self._processor = ImageProcessor(settings)

    @trims_after
    def prepare(self, data: bytes, max_side: int, working: WorkingSize | None, keep_image: bool) -> Prepared:
        return self._processor.prepare(data, max_side=max_side, working=working, keep_image=keep_image)

    @trims_after
    def finish(self, rendered: Rendered, output_format: OutputFormat, options: MatteOptions | None) -> Encoded:
        return self._processor.finish(rendered, output_format, options)
