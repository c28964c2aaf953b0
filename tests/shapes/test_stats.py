"""Parameter and MAC counts: hand-counted layers, and totals against the caffemodel's weights."""

from __future__ import annotations

import math

import pytest
from conftest import MODELS
from netgen import one

from nnbuild.shapes import infer_shapes
from nnbuild.shapes.stats import graph_stats, layer_macs, totals

MNET = MODELS / "retinaface-mnet25" / "mnet"

# RetinaFace mnet at its native 640x640, counted by nnbuild.shapes.stats; pinned so a change shows.
MNET_TOTAL_PARAMS = 434_463
MNET_TOTAL_MACS = 981_657_600


def mnet(weights: bool):
    from nnbuild.caffe.io import load

    return load(MNET.with_suffix(".prototxt"),
                MNET.with_suffix(".caffemodel") if weights else None).graph


@pytest.fixture(scope="module")
def mnet_stats():
    graph = mnet(weights=False)
    return {s.name: s for s in graph_stats(graph, infer_shapes(graph))}


# name -> (params, MACs), by hand from the prototxt at 640x640
HAND_COUNTS = {
    # 3x3 stride 2, 3 -> 8 channels, no bias; output 8 x 320 x 320
    # params 8*3*3*3 = 216; MACs 8*320*320 (= 819,200 outputs) * 3*3*3 = 22,118,400
    "mobilenet0_conv0": (216, 22_118_400),
    # depthwise 3x3 (group 8): params 8*1*3*3 = 72; MACs 819,200 * (8/8)*3*3 = 7,372,800
    "mobilenet0_conv1": (72, 7_372_800),
    # BatchNorm over 8 channels: mean 8 + variance 8 + moving-average factor 1 = 17; no MACs
    "mobilenet0_batchnorm0": (17, 0),
    # Scale with bias over 8 channels: 8 + 8
    "mobilenet0_batchnorm0_scale": (16, 0),
    # 1x1, 64 -> 20 with bias at 80x80: params 20*64 + 20 = 1,300; MACs 20*80*80*64 = 8,192,000
    "face_rpn_landmark_pred_stride8": (1_300, 8_192_000),
    # 2x upsampling Deconvolution, 64 channels, group 64, kernel 2, no bias, input 64 x 20 x 20:
    # params 64*1*2*2 = 256; MACs = input elements 64*20*20 (25,600) * (64/64) * 2*2 = 102,400
    "rf_c3_upsampling_": (256, 102_400),
    # ReLU, Crop, Reshape: nothing
    "crop1": (0, 0),
    "face_rpn_cls_prob_reshape_stride8": (0, 0),
}


@pytest.mark.parametrize("name", sorted(HAND_COUNTS))
def test_retinaface_layers_counted_by_hand(mnet_stats, name):
    assert (mnet_stats[name].params, mnet_stats[name].macs) == HAND_COUNTS[name]


def test_retinaface_totals(mnet_stats):
    assert totals(list(mnet_stats.values())) == (MNET_TOTAL_PARAMS, MNET_TOTAL_MACS)


def test_retinaface_totals_match_the_caffemodel():
    """An independent count from the loaded weight arrays: every stored value is a parameter;
    a convolution does (weight values) MACs per output pixel, a deconvolution per input pixel."""
    graph = mnet(weights=True)
    shapes = infer_shapes(graph)
    params = sum(b.size for layer in graph.layers for b in layer.blobs)
    macs = 0
    for layer in graph.layers:
        if layer.type == "Convolution":
            macs += layer.blobs[0].size * math.prod(shapes[layer.tops[0]][2:])
        elif layer.type == "Deconvolution":
            macs += layer.blobs[0].size * math.prod(shapes[layer.bottoms[0]][2:])
    assert params > 0
    assert (params, macs) == (MNET_TOTAL_PARAMS, MNET_TOTAL_MACS)
    stats = graph_stats(graph, shapes)
    assert totals(stats) == (MNET_TOTAL_PARAMS, MNET_TOTAL_MACS)


def test_inner_product_counts():
    # MTCNN R-Net conv4: 64x3x3 = 576 inputs -> 128: MACs 576*128 = 73,728;
    # params 73,728 + 128 bias = 73,856
    g = one('type: "InnerProduct" inner_product_param { num_output: 128 }', (1, 64, 3, 3))
    (s,) = graph_stats(g, infer_shapes(g))
    assert (s.params, s.macs) == (73_856, 73_728)
    # axis 2 on (2, 3, 4, 5): outer 2*3 = 6 rows of K = 4*5 = 20 -> 7: MACs 6*20*7 = 840
    g = one('type: "InnerProduct" inner_product_param { num_output: 7 axis: 2 }', (2, 3, 4, 5))
    (s,) = graph_stats(g, infer_shapes(g))
    assert (s.params, s.macs) == (20 * 7 + 7, 840)


def test_grouped_dilated_convolution_counts():
    # 8 -> 12 channels, group 4, 3x3 dilation 2, input 10x10 -> output (10-5)+1 = 6:
    # MACs 12*6*6 * (8/4) * 9 = 7,776; params 12*2*3*3 + 12 = 228
    g = one('type: "Convolution" convolution_param { num_output: 12 group: 4 kernel_size: 3 '
            'dilation: 2 }', (1, 8, 10, 10))
    (s,) = graph_stats(g, infer_shapes(g))
    assert (s.params, s.macs) == (228, 7_776)


@pytest.mark.parametrize("kind", ["Pooling", "Eltwise", "ReLU", "Softmax", "BatchNorm"])
def test_non_mac_layers_count_zero(kind):
    layer = one(f'type: "{kind}" pooling_param {{ kernel_size: 2 }}' if kind == "Pooling"
                else f'type: "{kind}"', (1, 2, 4, 4)).layers[0]
    assert layer_macs(layer, [(1, 2, 4, 4)], [(1, 2, 2, 2)]) == 0


def test_unknown_shapes_give_no_counts():
    g = one('type: "MyCustom"', (1, 2, 4, 4))
    (s,) = graph_stats(g, infer_shapes(g, partial=True))
    assert (s.out_shapes, s.params, s.macs) == ((None,), 0, 0)


def test_mobilefacenet_matches_the_published_madds():
    """MobileFaceNet paper (Chen et al., 2018, Table 2): 221M MAdds at 112x112, an independent
    total for the conventions here (BN/Scale/PReLU/Eltwise count 0)."""
    from nnbuild.caffe.io import load

    graph = load(MODELS / "mobilefacenet" / "mobilefacenet.prototxt").graph
    _, macs = totals(graph_stats(graph, infer_shapes(graph)))
    assert round(macs / 1e6) == 221
