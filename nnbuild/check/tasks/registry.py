"""Task-metrics registry: ``check.task`` name -> how to score float vs quantized outputs.

Each task is a class registered with ``@task_metric("name")`` that provides two static functions
and a table of gate rules:

* ``per_image(float_out, quant_out, args) -> dict`` — JSON-able result for one image. The output
  dicts map prototxt output blob names to float32 arrays; ``args`` is the recipe's
  ``check.task_args`` plus ``input_hw`` (network input height, width), ``image_name`` and, when
  the check set has ground truth, ``gt_boxes`` (x1, y1, x2, y2 in network-input pixels).
* ``summarize(per_image, args) -> dict`` — the task's scalar metrics over all images.
* ``ARGS``: ``{name: default}`` of the ``check.task_args`` the task reads (``COMMON_ARGS`` are
  accepted for every task); recipes naming any other key are refused at load time.
* ``GATES``: ``(recipe_key, metric, kind, default)`` rows; ``kind`` is ``"min"`` or ``"max"``;
  a ``None`` default means "only checked when the recipe sets it".

Task modules register themselves on import; ``get`` imports them lazily so importing the
registry stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Callable

from nnbuild.errors import RecipeError

TASKS: dict[str, type] = {}
# task_args every task accepts: WIDER ground truth, read by the check stage (gt_boxes).
COMMON_ARGS = {"ground_truth": None}

# Modules that define tasks (imported on first lookup).
TASK_MODULES = ("raw", "embedding", "retinaface_metrics", "ultraface", "ssd")


def task_metric(name: str) -> Callable[[type], type]:
    """Class decorator registering a task under ``name`` (the ``check.task`` value).

    Rejects duplicates and classes missing ``per_image``, ``summarize`` or ``GATES``.
    """
    def register(cls: type) -> type:
        if name in TASKS:
            raise ValueError(f"task metric {name!r} is registered twice "
                             f"({TASKS[name].__module__} and {cls.__module__})")
        for attr in ("per_image", "summarize"):
            if not callable(getattr(cls, attr, None)):
                raise TypeError(f"task metric {name!r}: {cls.__name__} has no {attr}()")
        for row in getattr(cls, "GATES", None) or ():
            if len(row) != 4 or row[2] not in ("min", "max"):
                raise TypeError(f"task metric {name!r}: bad GATES row {row!r}")
        if not hasattr(cls, "GATES"):
            raise TypeError(f"task metric {name!r}: {cls.__name__} has no GATES")
        if not isinstance(getattr(cls, "ARGS", None), dict):
            raise TypeError(f"task metric {name!r}: {cls.__name__} has no ARGS dict")
        TASKS[name] = cls
        return cls
    return register


def _load_all() -> None:
    for module in TASK_MODULES:
        importlib.import_module(f"nnbuild.check.tasks.{module}")


def get(name: str) -> type:
    """The task class for ``check.task``; RecipeError naming the known tasks otherwise."""
    if name not in TASKS:
        _load_all()
    if name not in TASKS:
        raise RecipeError("check.task", f"unknown task {name!r}",
                          expected="one of " + ", ".join(sorted(TASKS)), got=name,
                          hint="use raw for any model without a decoder")
    return TASKS[name]
