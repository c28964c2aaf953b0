"""The ``embedding`` task (MobileFaceNet): embedding cosine float vs quantized, pair separation.

``check.task_args``: ``output`` (blob name; default the only output) and optionally ``pairs``, a
list of ``[image_a, image_b, same]`` by image file name. With pairs the summary also gives the
mean cosine of same-identity and different-identity pairs and their difference (separation), for
the float and the quantized embeddings.
"""

from __future__ import annotations

import numpy as np

from nnbuild.check.metrics import compare
from nnbuild.errors import RecipeError
from nnbuild.check.tasks.registry import task_metric


def _pick(outputs: dict, args: dict) -> np.ndarray:
    name = args.get("output")
    if name is None:
        if len(outputs) != 1:
            raise RecipeError("check.task_args.output", "the embedding task needs one output",
                              expected="one of " + ", ".join(outputs), got="nothing (not set)",
                              hint="set check.task_args.output")
        name = next(iter(outputs))
    if name not in outputs:
        raise RecipeError("check.task_args.output", f"no network output {name!r}",
                          expected="one of " + ", ".join(outputs), got=name)
    return np.asarray(outputs[name], dtype=np.float64).ravel()


def _cos(a, b) -> float:
    return compare(np.asarray(a), np.asarray(b))["cosine"]


@task_metric("embedding")
class Embedding:
    """Per-image embedding cosine; same-vs-different separation when pairs are given."""

    ARGS = {"output": None, "pairs": []}  # check.task_args: None = the only output
    GATES = (("min_embedding_cosine", "embedding_cosine_min", "min", 0.95),)

    @staticmethod
    def per_image(float_out: dict, quant_out: dict, args: dict) -> dict:
        f, q = _pick(float_out, args), _pick(quant_out, args)
        return {"image": args.get("image_name"), "embedding_cosine": _cos(f, q),
                "float_embedding": f.tolist(), "quant_embedding": q.tolist()}

    @staticmethod
    def summarize(per_image: list, args: dict) -> dict:
        cos = [p["embedding_cosine"] for p in per_image]
        out = {"embedding_cosine": float(np.mean(cos)), "embedding_cosine_min": float(np.min(cos))}
        pairs = args.get("pairs") or []
        if pairs:
            out.update(_separation(per_image, pairs))
        return out


def _separation(per_image: list, pairs: list) -> dict:
    by_name = {p["image"]: p for p in per_image}
    out = {}
    for kind in ("float", "quant"):
        same, diff = [], []
        for a, b, is_same in pairs:
            if a not in by_name or b not in by_name:
                raise RecipeError("check.task_args.pairs", f"pair ({a}, {b}) names an image "
                                  "not in the check set", expected=", ".join(sorted(by_name)),
                                  got=f"{a}, {b}", hint="pairs use image file names")
            cos = _cos(by_name[a][f"{kind}_embedding"], by_name[b][f"{kind}_embedding"])
            (same if is_same else diff).append(cos)
        out[f"same_mean_{kind}"] = float(np.mean(same)) if same else None
        out[f"diff_mean_{kind}"] = float(np.mean(diff)) if diff else None
        out[f"separation_{kind}"] = (out[f"same_mean_{kind}"] - out[f"diff_mean_{kind}"]
                                     if same and diff else None)
    return out
