"""Shape inference: each layer type against hand-worked Caffe arithmetic, and every real model."""

from __future__ import annotations

import math

import pytest
from conftest import MODELS
from netgen import net, one, with_blobs

from nnbuild.errors import ModelError, ShapeError, UnsupportedLayerError
from nnbuild.shapes import infer_shapes, shape_fn


def out(graph, input_shapes=None):
    shapes = infer_shapes(graph, input_shapes)
    return [shapes[t] for t in graph.layers[-1].tops]


# -- convolution family --------------------------------------------------------------------------

@pytest.mark.parametrize("param, expected", [
    # h: (8 + 2*1 - 3) // 2 + 1 = 4 ; w: (10 + 2 - 3) // 2 + 1 = 5
    ("kernel_size: 3 pad: 1 stride: 2", (1, 6, 4, 5)),
    # h: (8 + 0 - 3)//1 + 1 = 6 ; w: (10 + 2*2 - 5)//3 + 1 = 4
    ("kernel_h: 3 kernel_w: 5 pad_h: 0 pad_w: 2 stride_h: 1 stride_w: 3", (1, 6, 6, 4)),
    # repeated per-axis form, same numbers as above
    ("kernel_size: 3 kernel_size: 5 pad: 0 pad: 2 stride: 1 stride: 3", (1, 6, 6, 4)),
    # dilation 2 -> effective kernel 2*(3-1)+1 = 5: h (8-5)+1 = 4, w (10-5)+1 = 6
    ("kernel_size: 3 dilation: 2", (1, 6, 4, 6)),
    # depthwise-style group 2 keeps the spatial formula: (8+2-3)//1+1 = 8
    ("kernel_size: 3 pad: 1 group: 2", (1, 6, 8, 10)),
])
def test_convolution_sizes(param, expected):
    g = one(f'type: "Convolution" convolution_param {{ num_output: 6 {param} }}', (1, 4, 8, 10))
    assert out(g) == [expected]


def test_deconvolution_caffe_formula():
    # stride*(in-1) + dilation*(k-1) + 1 - 2*pad: 2*(19-1) + 1*(2-1) + 1 - 0 = 38 (RetinaFace 2x)
    g = one('type: "Deconvolution" convolution_param { num_output: 64 kernel_size: 2 stride: 2 '
            'group: 64 bias_term: false }', (1, 64, 19, 20))
    assert out(g) == [(1, 64, 38, 40)]
    # 3*(5-1) + 2*(3-1) + 1 - 2*1 = 15
    g = one('type: "Deconvolution" convolution_param { num_output: 3 kernel_size: 3 stride: 3 '
            'dilation: 2 pad: 1 }', (1, 2, 5, 5))
    assert out(g) == [(1, 3, 15, 15)]


@pytest.mark.parametrize("param, size, expected", [
    ("kernel_size: 3 stride: 2", 112, 56),  # ceil((112-3)/2)+1 = ceil(54.5)+1 = 56 (floor: 55)
    ("kernel_size: 3 stride: 2 pad: 1", 7, 4),  # ceil((7+2-3)/2)+1 = 4; 3*2=6 < 7+1: kept
    ("kernel_size: 3 stride: 3 pad: 1", 5, 2),  # ceil((5+2-3)/3)+1 = 3; 2*3=6 >= 5+1: clipped
    ("kernel_size: 2 stride: 2", 5, 3),  # ceil((5-2)/2)+1 = 3
    ("kernel_size: 2 stride: 2 round_mode: FLOOR", 5, 2),  # floor((5-2)/2)+1 = 2
    ("kernel_h: 3 kernel_w: 3 stride_h: 2 stride_w: 2", 9, 4),  # ceil(6/2)+1 = 4
])
def test_pooling_rounding(param, size, expected):
    g = one(f'type: "Pooling" pooling_param {{ pool: MAX {param} }}', (1, 3, size, size))
    assert out(g) == [(1, 3, expected, expected)]


def test_global_pooling():
    g = one('type: "Pooling" pooling_param { pool: AVE global_pooling: true }', (1, 5, 7, 9))
    assert out(g) == [(1, 5, 1, 1)]


def test_inner_product_axis():
    g = one('type: "InnerProduct" inner_product_param { num_output: 10 }', (2, 3, 4, 5))
    assert out(g) == [(2, 10)]
    g = one('type: "InnerProduct" inner_product_param { num_output: 10 axis: 2 }', (2, 3, 4, 5))
    assert out(g) == [(2, 3, 10)]


# -- tensor layers -------------------------------------------------------------------------------

def test_concat_and_mismatch():
    g = one('type: "Concat"', (1, 2, 5, 5), (1, 3, 5, 5))
    assert out(g) == [(1, 5, 5, 5)]
    g = one('type: "Concat" concat_param { axis: 2 }', (1, 2, 5, 5), (1, 2, 3, 5))
    assert out(g) == [(1, 2, 8, 5)]
    g = one('type: "Concat"', (1, 2, 5, 5), (1, 3, 4, 5))
    with pytest.raises(ShapeError, match=r"layer 'L' \(Concat\): Concat inputs differ outside "
                                         r"axis 1. Expected \(1, 2, 5, 5\), got \(1, 3, 4, 5\)"):
        infer_shapes(g)


def test_eltwise_mismatch_names_both_shapes():
    g = one('type: "Eltwise"', (1, 4, 6, 6), (1, 4, 6, 6))
    assert out(g) == [(1, 4, 6, 6)]
    g = one('type: "Eltwise"', (1, 4, 6, 6), (1, 4, 7, 6))
    with pytest.raises(ShapeError, match=r"Eltwise inputs differ in shape. Expected "
                                         r"\(1, 4, 6, 6\), got \(1, 4, 7, 6\)"):
        infer_shapes(g)


def test_crop_axis_and_offsets():
    # default axis 2: N, C from the first bottom, H, W from the second
    g = one('type: "Crop"', (1, 8, 76, 76), (1, 3, 75, 75))
    assert out(g) == [(1, 8, 75, 75)]
    g = one('type: "Crop" crop_param { axis: 1 offset: 1 }', (1, 8, 10, 10), (1, 3, 9, 9))
    assert out(g) == [(1, 3, 9, 9)]
    g = one('type: "Crop" crop_param { offset: 2 }', (1, 8, 10, 10), (1, 8, 9, 9))
    with pytest.raises(ShapeError, match="crop window exceeds the input on axis 2"):
        infer_shapes(g)


@pytest.mark.parametrize("param, expected", [
    ("shape { dim: 1 dim: 2 dim: -1 dim: 0 }", (1, 2, 80, 20)),  # RetinaFace: -1 = 4*40*20/2/20
    ("shape { dim: 0 dim: -1 dim: 2 }", (1, 1600, 2)),  # 0 copies N; -1 = 3200/2
    ("shape { dim: 0 dim: -1 }", (1, 3200)),
    ("shape { dim: 2 dim: 2 } axis: 1 num_axes: 1", (1, 2, 2, 40, 20)),  # C=4 -> 2x2
    # Caffe: a negative axis starts at ndim + axis + 1 = 4 - 3 + 1 = 2, so H, W are replaced
    ("shape { dim: -1 } axis: -3", (1, 4, 800)),
])
def test_reshape(param, expected):
    g = one(f'type: "Reshape" reshape_param {{ {param} }}', (1, 4, 40, 20))
    assert out(g) == [expected]


def test_reshape_errors():
    g = one('type: "Reshape" reshape_param { shape { dim: 0 dim: 3 dim: -1 } }', (1, 4, 5, 5))
    with pytest.raises(ShapeError, match="cannot infer the -1 dim. Expected a divisor of 100"):
        infer_shapes(g)
    g = one('type: "Reshape" reshape_param { shape { dim: 0 dim: 7 } }', (1, 4, 5, 5))
    with pytest.raises(ShapeError, match="changes the element count.*Expected 100, got 7"):
        infer_shapes(g)


def test_permute_flatten_slice_split():
    g = one('type: "Permute" permute_param { order: 0 order: 2 order: 3 order: 1 }', (1, 3, 4, 5))
    assert out(g) == [(1, 4, 5, 3)]
    g = one('type: "Permute" permute_param { order: 0 order: 3 }', (1, 3, 4, 5))
    assert out(g) == [(1, 5, 3, 4)]  # unnamed axes follow in order
    g = one('type: "Flatten"', (2, 3, 4, 5))
    assert out(g) == [(2, 60)]
    g = one('type: "Flatten" flatten_param { axis: 1 end_axis: 2 }', (2, 3, 4, 5))
    assert out(g) == [(2, 12, 5)]
    g = one('type: "Slice" slice_param { slice_point: 1 slice_point: 4 }', (1, 6, 2, 2), tops=3)
    assert out(g) == [(1, 1, 2, 2), (1, 3, 2, 2), (1, 2, 2, 2)]
    g = one('type: "Slice" slice_param { axis: 2 }', (1, 6, 4, 2), tops=2)
    assert out(g) == [(1, 6, 2, 2), (1, 6, 2, 2)]
    g = one('type: "Split"', (1, 6, 4, 2), tops=3)
    assert out(g) == [(1, 6, 4, 2)] * 3


@pytest.mark.parametrize("kind", ["ReLU", "PReLU", "BatchNorm", "Scale", "Dropout", "TanH",
                                  "AbsVal", "Sigmoid", "Power", "Normalize", "Softmax"])
def test_shape_preserving_layers(kind):
    assert out(one(f'type: "{kind}"', (1, 3, 7, 5))) == [(1, 3, 7, 5)]


# -- SSD layers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("param, priors", [
    ("min_size: 10 min_size: 16 min_size: 24", 3),  # yufacedetect conv3_3: 3 sizes x ratio 1
    ("min_size: 30 max_size: 60", 2),  # ratio 1, plus one sqrt(min*max) prior
    ("min_size: 30 max_size: 60 aspect_ratio: 2", 4),  # ratios {1, 2, 1/2} + max
    ("min_size: 30 aspect_ratio: 2 aspect_ratio: 3 flip: false", 3),  # {1, 2, 3}
    ("min_size: 30 aspect_ratio: 1 aspect_ratio: 2 aspect_ratio: 2", 3),  # dedup: {1, 2, 1/2}
])
def test_prior_box_counts(param, priors):
    g = one(f'type: "PriorBox" prior_box_param {{ {param} }}', (1, 8, 5, 4), (1, 3, 40, 32))
    assert out(g) == [(1, 2, 5 * 4 * priors * 4)]


def test_detection_output_checks_priors():
    text = 'type: "DetectionOutput" detection_output_param { num_classes: 2 keep_top_k: 50 }'
    assert out(one(text, (1, 400), (1, 200), (1, 2, 400))) == [(1, 1, 50, 7)]
    with pytest.raises(ShapeError, match="confidence input does not match the 100 priors"):
        infer_shapes(one(text, (1, 400), (1, 300), (1, 2, 400)))


# -- driver --------------------------------------------------------------------------------------

def test_input_override_and_unknown_input():
    g = net('layer { name: "data" type: "Input" top: "data" '
            'input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }'
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
            'convolution_param { num_output: 2 kernel_size: 3 stride: 2 } }')
    assert infer_shapes(g)["c"] == (1, 2, 15, 15)  # (32-3)//2+1
    assert infer_shapes(g, {"data": (1, 3, 64, 48)})["c"] == (1, 2, 31, 23)
    with pytest.raises(ShapeError, match="input 'image': not a network input. Expected data"):
        infer_shapes(g, {"image": (1, 3, 8, 8)})


def test_unknown_layer_type_and_partial():
    g = net('layer { name: "odd" type: "MyCustom" bottom: "x" top: "y" }'
            'layer { name: "r" type: "ReLU" bottom: "y" top: "z" }'
            'layer { name: "r2" type: "ReLU" bottom: "x" top: "w" }', {"x": (1, 2, 3, 3)})
    with pytest.raises(UnsupportedLayerError, match="layer 'odd': no shape inference for layer "
                                                    "type 'MyCustom'"):
        infer_shapes(g)
    assert infer_shapes(g, partial=True) == {"x": (1, 2, 3, 3), "w": (1, 2, 3, 3)}


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="'ReLU' registered twice"):
        shape_fn("ReLU")(lambda layer, bottoms: bottoms)


@pytest.mark.parametrize("layer, param, shape, blobs, bad", [
    # Convolution weight (Cout, Cin/group, kh, kw) + bias (Cout,)
    ("Convolution", "convolution_param { num_output: 6 kernel_size: 3 group: 2 }",
     (1, 4, 8, 8), [(6, 2, 3, 3), (6,)], [(6, 4, 3, 3), (6,)]),
    # Deconvolution weight (Cin, Cout/group, kh, kw)
    ("Deconvolution", "convolution_param { num_output: 4 kernel_size: 2 stride: 2 group: 4 "
     "bias_term: false }", (1, 4, 8, 8), [(4, 1, 2, 2)], [(1, 4, 2, 2)]),
    # InnerProduct (N, C*H*W); legacy 4-D blob (1, 1, 10, 48) is accepted as Caffe does
    ("InnerProduct", "inner_product_param { num_output: 10 }", (1, 3, 4, 4),
     [(1, 1, 10, 48), (10,)], [(10, 47), (10,)]),
    ("BatchNorm", "", (1, 5, 2, 2), [(5,), (5,), (1,)], [(5,), (4,), (1,)]),
    ("Scale", "scale_param { bias_term: true }", (1, 5, 2, 2), [(5,), (5,)], [(5,)]),
    ("PReLU", "", (1, 5, 2, 2), [(5,)], [(1,)]),
    ("Normalize", "norm_param { channel_shared: true }", (1, 5, 2, 2), [(1,)], [(5,)]),
])
def test_weight_shapes_checked(layer, param, shape, blobs, bad):
    g = one(f'type: "{layer}" {param}', shape)
    infer_shapes(with_blobs(g, "L", *blobs))  # matching weights pass
    with pytest.raises(ModelError, match=r"layer 'L': (weight blob \d has the wrong shape|wrong "
                                         r"number of weight blobs). Expected"):
        infer_shapes(with_blobs(g, "L", *bad))


# -- the real models -----------------------------------------------------------------------------

NATIVE_OUTPUTS = {
    # 640x640: strides 32/16/8 -> 20, 40, 80; 8/20/4 channels (nnie-facts.md §6)
    "retinaface-mnet25/mnet": {f"face_rpn_{k}_stride{s}": (1, c, 640 // s, 640 // s)
                               for s in (32, 16, 8)
                               for k, c in (("bbox_pred", 8), ("landmark_pred", 20),
                                            ("cls_prob_reshape", 4))},
    "mobilefacenet/mobilefacenet": {"fc1": (1, 128)},
    "mtcnn/det1": {"conv4-2": (1, 4, 1, 1), "prob1": (1, 2, 1, 1)},  # 12x12 -> one cell
    "mtcnn/det2": {"conv5-2": (1, 4), "prob1": (1, 2)},
    "mtcnn/det3": {"conv6-2": (1, 4), "conv6-3": (1, 10), "prob1": (1, 2)},
    # 320x240, strides 8/16/32/64 with 3/2/2/3 anchors: 40*30*3 + 20*15*2 + 10*8*2 + 5*4*3
    "ultraface-slim-320/slim-320": {"boxes": (1, 4420, 4), "scores": (1, 4420, 2)},
    "ultraface-rfb-320/RFB-320": {"boxes": (1, 4420, 4), "scores": (1, 4420, 2)},
    "yufacedetect-v1/yufacedetectnet-open-v1": {"detection_out": (1, 1, 50, 7)},
}


def load_model(stem: str, weights: bool = True):
    from nnbuild.caffe.io import load

    path = MODELS / f"{stem}.prototxt"
    return load(path, path.with_suffix(".caffemodel") if weights else None).graph


@pytest.mark.parametrize("stem", sorted(NATIVE_OUTPUTS))
def test_real_models_infer_at_native_size_with_weights(stem):
    graph = load_model(stem)
    shapes = infer_shapes(graph)  # also checks every weight blob against the shapes
    got = {graph.caffe_name(b): shapes[b] for b in graph.outputs}
    assert got == NATIVE_OUTPUTS[stem]


def test_yufacedetect_priors_match_the_heads():
    graph = load_model("yufacedetect-v1/yufacedetectnet-open-v1", weights=False)
    shapes = infer_shapes(graph)
    by_name = {graph.caffe_name(b): s for b, s in shapes.items()}
    # 4420 priors (same anchor layout as UltraFace), 4 coordinates each, 2 classes
    assert by_name["mbox_priorbox"] == (1, 2, 4420 * 4)
    assert math.prod(by_name["mbox_loc"]) == 4420 * 4
    assert math.prod(by_name["mbox_conf_flatten"]) == 4420 * 2


def _without_crops(graph):
    """RetinaFace with each Crop deleted and its consumers wired to the first bottom."""
    g = graph.copy()
    for crop in [layer for layer in g.layers if layer.type == "Crop"]:
        for layer in g.layers:
            layer.bottoms = [crop.bottoms[0] if b == crop.tops[0] else b for b in layer.bottoms]
        g.layers.remove(crop)
    return g


def test_retinaface_at_600_crops_then_fails_without_them():
    graph = load_model("retinaface-mnet25/mnet", weights=False)
    shapes = infer_shapes(graph, {"data": (1, 3, 600, 600)})
    # 600 -> 300 -> 150 -> 75 -> 38 -> 19 (3x3 stride-2 convs, pad 1): the stride-8 head is 75,
    # its upsampled neighbour 2*38 = 76, which crop1 cuts to 75.
    assert shapes["crop1"] == (1, 64, 75, 75)
    assert shapes["face_rpn_cls_prob_reshape_stride32"] == (1, 4, 19, 19)
    with pytest.raises(ShapeError, match=r"layer 'plus1' \(Eltwise\): Eltwise inputs differ in "
                                         r"shape. Expected \(1, 64, 75, 75\), got "
                                         r"\(1, 64, 76, 76\)"):
        infer_shapes(_without_crops(graph), {"data": (1, 3, 600, 600)})
    # at 640 every upsampled map already matches: no Crop needed
    assert infer_shapes(_without_crops(graph))["plus1"] == (1, 64, 80, 80)
