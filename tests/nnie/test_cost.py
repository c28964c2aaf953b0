"""nnbuild.nnie.cost: per-layer work and the roofline, checked against independent formulas."""

from __future__ import annotations

import math

import pytest

from conftest import MODELS
from nnbuild.caffe import io
from nnbuild.nnie import cost
from nnbuild.nnie.cost import model, work
from nnbuild.shapes import infer_shapes


@pytest.fixture(scope="module")
def mobilefacenet():
    return io.load(MODELS / "mobilefacenet" / "mobilefacenet.prototxt").graph


@pytest.fixture(scope="module")
def retinaface():
    return io.load(MODELS / "retinaface-mnet25" / "mnet.prototxt").graph  # 1x3x640x640


def test_depthwise_work_is_dense_over_all_channels(mobilefacenet):
    shapes = infer_shapes(mobilefacenet)
    rows = {r.name: r for r in work.graph_work(mobilefacenet)}
    grouped = [l for l in mobilefacenet.layers
               if l.type == "Convolution" and l.param.convolution_param.group > 1]
    assert len(grouped) == 17
    for layer in grouped:
        p = layer.param.convolution_param
        n, c, h, w = shapes[layer.tops[0]]
        k = (list(p.kernel_size) or [p.kernel_h])[0]
        cin = shapes[layer.bottoms[0]][1]
        assert rows[layer.name].macs == c * h * w * k * k  # one input channel per group
        assert rows[layer.name].work_macs == c * h * w * k * k * cin  # expanded to all inputs
        assert rows[layer.name].groups == p.group == cin


def test_fused_chains_cost_nothing_and_move_the_chain_output(mobilefacenet):
    rows = {r.name: r for r in work.graph_work(mobilefacenet)}
    layers = {l.name: l for l in mobilefacenet.layers}
    shapes = infer_shapes(mobilefacenet)
    fused = [r for r in rows.values() if r.kind == "fused"]
    assert {r.type for r in fused} == {"BatchNorm", "Scale", "PReLU"}
    head = rows[fused[0].fused_into]
    assert head.kind == "compute" and head.weight_elems > 0
    conv = layers[head.name]
    assert head.act_elems == (math.prod(shapes[conv.bottoms[0]])
                              + math.prod(shapes[conv.tops[0]]))
    assert all(r.kind == "memory" for r in rows.values() if r.type == "Eltwise")


def test_roofline_per_layer_independent_formula(retinaface):
    spec = model.CHIPS["hi3516dv300"]
    eta = model.EFFICIENCY["1.2"]
    rows = cost.layer_costs(retinaface, {}, "hi3516dv300")
    for row in rows:
        if row["bound"] == "none":
            assert row["ms"] == 0.0
            continue
        compute = row["work_macs"] / (0.5e12 * eta) * 1e3
        memory = row["bytes"] / 7.2e9 * 1e3
        assert row["ms"] == pytest.approx(max(compute, memory), rel=1e-6, abs=1e-9)
        assert row["bound"] == ("compute" if compute >= memory else "memory")
    assert spec.peak_macs == 0.5e12
    first = next(r for r in rows if r["type"] == "Convolution")
    assert first["bound"] == "memory"  # 3x640x640 in, 8x320x320 out, 648 weights
    assert first["bytes"] == 3 * 640 * 640 + 8 * 320 * 320 + 8 * 27


def test_16_bit_is_twice_8_bit_and_mixed_in_between(retinaface):
    names = [l.name for l in retinaface.layers]
    t8 = cost.total_ms(retinaface, 8)
    t16 = cost.total_ms(retinaface, 16)
    assert t16 == pytest.approx(2 * t8, rel=1e-12)
    convs = [l.name for l in retinaface.layers if l.type == "Convolution"]
    mixed = {**dict.fromkeys(names, 8), convs[0]: 16, convs[-1]: 16}
    rows = {r["name"]: r for r in cost.layer_costs(retinaface, mixed)}
    t_mixed = sum(r["ms"] for r in rows.values())
    assert t8 < t_mixed < t16
    row8 = {r["name"]: r for r in cost.layer_costs(retinaface, {})}
    assert t_mixed - t8 == pytest.approx(row8[convs[0]]["ms"] + row8[convs[-1]]["ms"], rel=1e-9)


def test_chips_follow_datasheet_ratios(retinaface):
    dv300 = cost.estimate(retinaface, "hi3516dv300")["latency_ms"]
    cv500 = cost.estimate(retinaface, "hi3516cv500")["latency_ms"]
    assert cv500 == pytest.approx(2 * dv300, rel=1e-9)  # half the TOPS and half the DRAM
    assert cost.estimate(retinaface, "hi3519av100")["latency_ms"] < dv300
    one_core = cost.estimate(retinaface, "hi3559av100")
    assert one_core["cores_used"] == 1 and "one NNIE core of 2" in one_core["note"]


def test_estimate_fields(mobilefacenet):
    result = cost.estimate(mobilefacenet, "hi3516dv300")
    assert result["estimate"] is True and result["chip"] == "hi3516dv300"
    assert result["totals"]["int8"] == result["latency_ms"] == result["totals"]["mode"]
    assert result["totals"]["int16"] == pytest.approx(2 * result["totals"]["int8"])
    assert result["uncertainty"] == model.LOO_ERROR["1.2"]
    assert result["work_macs"] > 8 * result["macs"]  # depthwise dominates as the NNIE runs it
    assert 7.5 < result["latency_ms"] < 12.5  # published ~10 ms (nniefacelib issue #60)


def test_bad_bits_and_chip(mobilefacenet):
    from nnbuild.errors import RecipeError

    with pytest.raises(ValueError, match="bits must be 8 or 16"):
        model.layer_ms(work.graph_work(mobilefacenet)[1], 4, model.CHIPS["hi3516dv300"], 0.4)
    with pytest.raises(RecipeError, match="unknown chip 'hi9999'. Expected one of"):
        cost.estimate(mobilefacenet, "hi9999")
