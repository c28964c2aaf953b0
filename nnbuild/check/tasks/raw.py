"""The ``raw`` task (the default): output cosine only, for any model, no decoder needed."""

from __future__ import annotations

import numpy as np

from nnbuild.check.metrics import compare
from nnbuild.check.tasks.registry import task_metric


@task_metric("raw")
class Raw:
    """Cosine of every network output, float vs quantized."""

    ARGS: dict = {}
    GATES = ()

    @staticmethod
    def per_image(float_out: dict, quant_out: dict, args: dict) -> dict:
        per_output = {name: compare(float_out[name], quant_out[name])["cosine"]
                      for name in float_out}
        return {"output_cosine": float(np.mean(list(per_output.values()))),
                "per_output": per_output}

    @staticmethod
    def summarize(per_image: list, args: dict) -> dict:
        cos = [p["output_cosine"] for p in per_image]
        return {"output_cosine": float(np.mean(cos)), "output_cosine_min": float(np.min(cos))}
