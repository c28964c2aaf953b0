"""Tests for nnbuild.nnie.cost: the fit reproduces the published latencies (nnie-facts.md §1)."""

from __future__ import annotations

import math

import pytest

from conftest import MODELS
from nnbuild.caffe import io
from nnbuild.nnie.chips import get_chip
from nnbuild.nnie import cost


@pytest.fixture(scope="module")
def retinaface():
    return io.load(MODELS / "retinaface-mnet25" / "mnet.prototxt").graph  # input 1x3x640x640


@pytest.fixture(scope="module")
def mobilefacenet():
    return io.load(MODELS / "mobilefacenet" / "mobilefacenet.prototxt").graph


def conv_macs(graph):
    """Independent MAC count: every Convolution/Deconvolution/InnerProduct from its weight shape."""
    from nnbuild.shapes import infer_shapes

    shapes, total = infer_shapes(graph), 0
    for layer in graph.layers:
        if layer.type == "Convolution":
            p = layer.param.convolution_param
            cin = shapes[layer.bottoms[0]][1]
            k = list(p.kernel_size) or [p.kernel_h, p.kernel_w]
            kh, kw = (k[0], k[-1])
            total += math.prod(shapes[layer.tops[0]]) * cin // p.group * kh * kw
        elif layer.type == "Deconvolution":
            p = layer.param.convolution_param
            k = list(p.kernel_size) or [p.kernel_h, p.kernel_w]
            total += math.prod(shapes[layer.bottoms[0]]) * p.num_output // p.group * k[0] * k[-1]
        elif layer.type == "InnerProduct":
            ip = layer.param.inner_product_param
            total += math.prod(shapes[layer.bottoms[0]]) * ip.num_output
    return total


def test_fit_constant_is_retinaface_macs(retinaface):
    assert cost.RETINAFACE_640_MACS == conv_macs(retinaface)


@pytest.mark.parametrize("bits, ms", [(8, 17.0), (16, 34.0)])
def test_fit_reproduces_published_numbers(retinaface, bits, ms):
    names = {layer.name: bits for layer in retinaface.layers}
    result = cost.estimate(retinaface, "hi3516dv300", bits=names)
    assert result["latency_ms"] == pytest.approx(ms, rel=1e-9)
    assert result["estimate"] is True and "17 ms" in result["fitted_to"]
    assert sum(r["ms"] for r in result["layers"]) == pytest.approx(ms, rel=1e-12)


def test_scales_with_chip_tops(retinaface):
    for chip, ms in (("hi3516cv500", 34.0), ("hi3519av100", 8.5)):
        assert cost.estimate(retinaface, chip)["latency_ms"] == pytest.approx(ms)
    no_tops = cost.estimate(retinaface, "hi3559av100")
    assert no_tops["latency_ms"] is None and "no published TOPS" in no_tops["note"]


def test_mixed_precision_is_per_layer(retinaface):
    convs = [lay.name for lay in retinaface.layers if lay.type == "Convolution"]
    hp = {convs[0]: 16, convs[-1]: 16, **{n: 8 for n in convs[1:-1]}}
    rows = {r["name"]: r for r in cost.layer_costs(retinaface, hp)}
    expected = sum(2 * r["macs"] / (1e12 * (0.11549 if r["bits"] == 8 else 0.057745))
                   for r in rows.values()) * 1e3
    got = cost.estimate(retinaface, "hi3516dv300", bits=hp)["latency_ms"]
    assert 17.0 < got < 34.0 and got == pytest.approx(expected, rel=1e-4)
    assert rows[convs[0]]["bits"] == 16 and rows[convs[1]]["bits"] == 8


def test_bytes_moved_independent(retinaface):
    first = next(lay for lay in retinaface.layers if lay.type == "Convolution")
    row = next(r for r in cost.layer_costs(retinaface, {}) if r["name"] == first.name)
    p = first.param.convolution_param
    k = (list(p.kernel_size) or [p.kernel_h])[0]
    # input 3x640x640 U8 picture; conv1 of mnet: 8 channels, stride 2 -> 320x320, 3x3, no bias.
    params = p.num_output * 3 * k * k + (p.num_output if p.bias_term else 0)
    assert row["bytes"] == 3 * 640 * 640 + p.num_output * 320 * 320 + params
    rows16 = cost.layer_costs(retinaface, {first.name: 16})
    row16 = next(r for r in rows16 if r["name"] == first.name)
    assert row16["bytes"] == 2 * row["bytes"]


def test_mobilefacenet_estimate_printed(mobilefacenet):
    result = cost.estimate(mobilefacenet, "hi3516dv300")
    ms = result["latency_ms"]
    print(f"\nMobileFaceNet 112x112 8-bit on Hi3516DV300: estimated {ms:.2f} ms "
          f"({result['macs'] / 1e6:.1f} MMACs); published ~10 ms (nniefacelib issue #60)")
    assert ms == pytest.approx(17.0 * conv_macs(mobilefacenet) / cost.RETINAFACE_640_MACS)
    assert 1.0 < ms < 10.0  # MACs-only model: knowingly optimistic for depthwise-heavy nets


def test_bad_bits():
    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        cost.latency_ms(1000, 4, get_chip("hi3516dv300"))
