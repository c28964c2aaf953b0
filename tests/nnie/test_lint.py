"""NNIE lint rules, the CPU segment split and the chip table (nnie-facts.md §1, §5)."""

from __future__ import annotations

import pytest
from conftest import MODELS
from netgen import net, one

from nnbuild.nnie.chips import CHIPS, get_chip
from nnbuild.errors import RecipeError
from nnbuild.nnie.lint import cpu_segments, lint, rule


def load(stem: str):
    from nnbuild.caffe.io import load as load_model

    return load_model(MODELS / f"{stem}.prototxt").graph


def by_rule(findings, rule_id):
    return [f for f in findings if f.rule == rule_id]


# -- the real models -----------------------------------------------------------------------------

def test_retinaface_crop_reshape_and_name_collision():
    findings = lint(load("retinaface-mnet25/mnet"))
    assert [f.layer for f in by_rule(findings, "crop")] == ["crop0", "crop1"]
    reshapes = by_rule(findings, "reshape")
    assert len(reshapes) == 6
    assert all("first dim is 1, not 0" in f.message for f in reshapes)
    (collision,) = by_rule(findings, "output_name_collision")
    assert collision.message.startswith(
        "outputs face_rpn_cls_prob_reshape_stride32, face_rpn_cls_prob_reshape_stride16, "
        "face_rpn_cls_prob_reshape_stride8 all become 'face_rpn_cls_prob_reshape_strid'")
    assert not by_rule(findings, "cpu_layer") and not by_rule(findings, "order")
    assert all(f.hint for f in findings)


def test_yufacedetect_reports_cpu_layers_and_the_split():
    graph = load("yufacedetect-v1/yufacedetectnet-open-v1")
    findings = lint(graph)
    cpu = by_rule(findings, "cpu_layer")
    assert [f.layer for f in cpu] == [f"conv{i}_3_norm_mbox_priorbox" for i in (3, 4, 5, 6)] + [
        "detection_out"]
    assert "must run on the CPU (segment 2 of 2: nnie(70 layers) -> cpu(6 layers))" in \
        cpu[0].message
    nnie, host = cpu_segments(graph)
    assert (nnie.device, host.device) == ("nnie", "cpu")
    # the Concat of the PriorBox outputs stays on the CPU with them
    assert set(host.layers) == {f"conv{i}_3_norm_mbox_priorbox" for i in (3, 4, 5, 6)} | {
        "mbox_priorbox", "detection_out"}
    assert set(host.inputs) == {"data", "conv3_3_norm", "conv4_3_norm", "conv5_3_norm",
                                "conv6_3_norm", "mbox_loc", "mbox_conf_flatten"}
    assert set(nnie.outputs) == set(host.inputs) - {"data"}
    assert host.outputs == ("detection_out",)


def test_mobilefacenet_is_lint_clean():
    findings = lint(load("mobilefacenet/mobilefacenet"))
    assert [f.severity for f in findings] == ["info"]  # only the long internal names
    assert "longer than 31 characters" in findings[0].message


# -- each rule on a generated net ----------------------------------------------------------------

def rules_of(graph, chip="hi3516dv300"):
    return [(f.rule, f.layer) for f in lint(graph, chip) if f.severity != "info"]


def test_permute_only_nhwc():
    assert rules_of(one('type: "Permute" permute_param { order: 0 order: 2 order: 3 order: 1 }',
                        (1, 3, 4, 5))) == []
    assert rules_of(one('type: "Permute" permute_param { order: 0 order: 3 order: 1 order: 2 }',
                        (1, 3, 4, 5))) == [("permute", "L")]


def test_reshape_must_be_4d_with_batch_copy():
    ok = 'type: "Reshape" reshape_param { shape { dim: 0 dim: 2 dim: -1 dim: 0 } }'
    assert rules_of(one(ok, (1, 4, 4, 4))) == []
    flat = one('type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } }', (1, 4, 4, 4))
    (finding,) = lint(flat)
    assert finding.rule == "reshape" and "output (1, 64) is 2-D, not 4-D" in finding.message


def test_width_limit():
    assert rules_of(one('type: "ReLU"', (1, 1, 2, 4096))) == []
    assert rules_of(one('type: "ReLU"', (1, 1, 2, 4097))) == [("width", "in0"), ("width", "L")]


@pytest.mark.parametrize("param, ok", [
    ("kernel_size: 255 pad: 0 stride: 255", True),
    ("kernel_size: 3 pad: 256", False),
    ("kernel_h: 256 kernel_w: 1", False),
    ("kernel_size: 3 stride_h: 300 stride_w: 1", False),
])
def test_kernel_pad_stride_ranges(param, ok):
    g = one(f'type: "Convolution" convolution_param {{ num_output: 1 {param} }}', (1, 1, 600, 600))
    assert rules_of(g) == ([] if ok else [("kernel_pad_stride", "L")])


def test_group_limit_and_floor_pooling():
    g = one('type: "Convolution" convolution_param { num_output: 4096 group: 4096 '
            'kernel_size: 1 }', (1, 4096, 2, 2))
    assert rules_of(g) == [("group", "L")]
    g = one('type: "Pooling" pooling_param { kernel_size: 2 stride: 2 round_mode: FLOOR }',
            (1, 1, 5, 5))
    assert [(f.rule, f.severity) for f in lint(g)] == [("pool_round", "warning")]


@pytest.mark.parametrize("power, ok", [(2, True), (-0.5, True), (3, True), (1.5, False),
                                       (4, False)])
def test_power_exponents(power, ok):
    g = one(f'type: "Power" power_param {{ power: {power} }}', (1, 1, 2, 2))
    assert rules_of(g) == ([] if ok else [("power", "L")])


def test_layer_order_and_batch():
    g = net('layer { name: "b" type: "ReLU" bottom: "a" top: "b" }'
            'layer { name: "a" type: "ReLU" bottom: "x" top: "a" }', {"x": (2, 1, 2, 2)})
    assert rules_of(g) == [("order", "b"), ("batch", "x")]


def test_unknown_type_splits_segments_and_too_many_segments():
    # conv, custom, conv, custom, ...: 9 NNIE segments alternating with 8 CPU segments
    text, prev = "", "x"
    for i in range(17):
        kind = ('type: "Convolution" convolution_param { num_output: 1 kernel_size: 1 }'
                if i % 2 == 0 else 'type: "MyCustom"')
        text += f'layer {{ name: "l{i}" {kind} bottom: "{prev}" top: "t{i}" }}'
        prev = f"t{i}"
    g = net(text, {"x": (1, 1, 4, 4)})
    segments = cpu_segments(g)
    assert [s.device for s in segments] == ["nnie", "cpu"] * 8 + ["nnie"]
    found = rules_of(g)
    assert found.count(("segments", "l0")) == 1
    assert sorted(layer for r, layer in found if r == "cpu_layer") == sorted(
        f"l{i}" for i in range(1, 17, 2))


def test_segment_output_limit():
    text = "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "x" top: "y{i}" }}'
                   for i in range(17))
    assert rules_of(net(text, {"x": (1, 1, 2, 2)})) == [("segments", "r0")]


def test_rule_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="lint rule 'crop' registered twice"):
        rule("crop")(lambda ctx: [])


# -- chips ---------------------------------------------------------------------------------------

def test_chip_table():
    assert sorted(CHIPS) == ["hi3516av300", "hi3516cv500", "hi3516dv300", "hi3519av100",
                             "hi3559av100"]
    assert get_chip("Hi3559AV100").mapper_version == 11  # nnie-facts.md §1
    assert {c.mapper_version for n, c in CHIPS.items() if n != "hi3559av100"} == {12}
    assert (get_chip("hi3516cv500").tops, get_chip("hi3519av100").tops) == (0.5, 2.0)
    with pytest.raises(RecipeError, match=r"target.chip: unknown chip 'hi3518'. Expected one of "
                                          r"hi3516cv500, hi3516dv300, hi3516av300, hi3519av100, "
                                          r"hi3559av100, got hi3518"):
        get_chip("hi3518")


def test_lint_takes_a_chip_name_and_rejects_unknown_ones():
    g = one('type: "ReLU"', (1, 1, 2, 4097))
    assert rules_of(g, "hi3559av100") == [("width", "in0"), ("width", "L")]
    with pytest.raises(RecipeError, match="chip: unknown chip 'x'"):
        lint(g, "x")
