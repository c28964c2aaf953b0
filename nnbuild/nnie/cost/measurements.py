"""The published NNIE board latencies the cost model is fitted to and checked against.

Transcribed from ../shared/docs/latency-facts.md (which names every source). ``scope`` is
``"nnie"`` when the timer covers only the NNIE forward pass (the model must reproduce it) and
``"cpu"`` when CPU pre/post-processing is included (the model must stay below it). Points whose
precision is not stated are taken as 8-bit: the mapper's default ``compile_mode 0``
(nnie-facts.md §2). Not used: CenterTrack on Hi3519AV100 (28 ms; its input size and modified
architecture are unpublished, so the model cannot represent it) and MobileFaceNet on
Hi3516CV500 (~300 ms; its author calls it an anomaly).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One published time: ``net`` is a key of the reference nets (see ``fit.reference_nets``)."""

    label: str
    net: str
    chip: str
    bits: int
    ms: float
    scope: str
    source: str


NNIEFACELIB = "hanson-young/nniefacelib"
POINTS = (
    Measurement("RetinaFace-640 8-bit, Hi3516DV300", "retinaface-640", "hi3516dv300", 8, 17.0,
                "nnie", NNIEFACELIB + " README, timer in vision/nnie_face_api.c"),
    Measurement("RetinaFace-640 16-bit, Hi3516DV300", "retinaface-640", "hi3516dv300", 16, 34.0,
                "nnie", NNIEFACELIB + " README; issue #35"),
    Measurement("MobileFaceNet-112, Hi3516DV300", "mobilefacenet", "hi3516dv300", 8, 10.0,
                "nnie", NNIEFACELIB + " issue #60"),
    Measurement("MobileFaceNet-112, Hi3559AV100 (one core)", "mobilefacenet", "hi3559av100", 8,
                14.0, "nnie", NNIEFACELIB + " issue #3"),
    Measurement("YOLOv5s-416, Hi3559AV100", "yolov5s-416", "hi3559av100", 8, 17.0, "nnie",
                "liujianisme/yolo5_caffe_hisi3559 issue #1"),
    Measurement("RetinaFace-640 16-bit + CPU, Hi3516DV300", "retinaface-640", "hi3516dv300", 16,
                40.0, "cpu", "zhihu p/111399987 (before BN merge)"),
    Measurement("RetinaFace-640 8-bit + CPU, Hi3516DV300", "retinaface-640", "hi3516dv300", 8,
                29.0, "cpu", "zhihu p/111399987 ('20-odd' ms: at most 29)"),
    Measurement("YOLOv3-416 (SDK) + CPU, Hi3516DV300", "yolov3-416", "hi3516dv300", 8, 238.0,
                "cpu", "BaronLeeLZP/hi3516dv300_nnie-yolov3-demo image/result.png"),
    Measurement("VGG16-SSD300 (SDK) + CPU, Hi3559AV100", "vgg16-ssd300", "hi3559av100", 8, 170.0,
                "cpu", "Ghustwb/Hi3559_NNIE_SSD README"),
)


def nnie_only() -> tuple[Measurement, ...]:
    """The points the model is fitted to (timer covers the NNIE forward only)."""
    return tuple(p for p in POINTS if p.scope == "nnie")


def upper_bounds() -> tuple[Measurement, ...]:
    """The '+ CPU' points: the NNIE part must take less."""
    return tuple(p for p in POINTS if p.scope == "cpu")
