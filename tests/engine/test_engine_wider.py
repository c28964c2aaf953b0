"""RetinaFace mnet through the engine on the 120 WIDER FACE validation photos at 416x416."""

from __future__ import annotations

from conftest import IMAGES, MODELS
from nnbuild.caffe.io import load
from nnbuild.engine import run
from nnbuild.preprocess import load_tensor
from nnbuild.check.tasks import retinaface as rf

WIDER = IMAGES / "widerface-val416"


def test_wider_recall_at_416():
    graph = load(MODELS / "retinaface-mnet25" / "mnet.prototxt",
                 MODELS / "retinaface-mnet25" / "mnet.caffemodel").graph
    truth = rf.read_wider_gt(WIDER / "gt.txt")
    names = (WIDER / "list.txt").read_text().split()
    assert len(names) == 120
    found_big = total_big = found_all = total_all = 0
    for name in names:
        # The photos are already stretched to 416x416 (no letterbox); RGB 0..255, no mean.
        x = load_tensor(WIDER / "images" / name, (416, 416), color="RGB")
        faces = rf.decode(run(graph, {"data": x}), (416, 416), score_threshold=0.5, nms_iou=0.4)
        big, every = rf.gt_boxes(truth[name], min_size=32), rf.gt_boxes(truth[name])
        found_big += rf.found_faces(big, faces)
        total_big += len(big)
        found_all += rf.found_faces(every, faces)
        total_all += len(every)
    recall_big, recall_all = found_big / total_big, found_all / total_all
    print(f"WIDER val416 recall@IoU0.5, score 0.5: faces >= 32 px {recall_big:.3f} "
          f"({found_big}/{total_big}), all valid faces {recall_all:.3f} ({found_all}/{total_all})")
    assert recall_big >= 0.55
