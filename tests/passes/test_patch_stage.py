"""The patch stage (through patch_model/write_outputs) and the patch/sizes commands."""

from __future__ import annotations

import json

import yaml

from conftest import IMAGES, MODELS, ROOT
from nnbuild.caffe import io
from nnbuild.cli import main
from nnbuild.passes import patching
from nnbuild.recipe.spec import RecipeSpec
from nnbuild.stages import patch as stage

RF = MODELS / "retinaface-mnet25"
YU = MODELS / "yufacedetect-v1"
PHOTO = IMAGES / "photos" / "retinaface-cpp-test.jpg"


def base_recipe(name: str) -> dict:
    return yaml.safe_load((ROOT / "recipes" / name).read_text())


def test_stage_metadata_is_importable_without_heavy_work():
    assert stage.NAME == "patch" and stage.NEEDS == ("fetch",)
    assert "patches" in stage.READS


def test_retinaface_outputs_and_report(tmp_path):
    recipe = base_recipe("_base/retinaface-mnet25.yaml")
    graph = io.load(RF / "mnet.prototxt", RF / "mnet.caffemodel").graph
    result = patching.patch_model(graph, RecipeSpec.from_data(recipe), [PHOTO])
    patching.write_outputs(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lint.json", "model.caffemodel", "model.prototxt", "patch-report.json"]
    report = json.loads((tmp_path / "patch-report.json").read_text())
    assert [p["pass"] for p in report["passes"]][:2] == ["set_input_shape", "remove_crop"]
    assert report["check"]["passed"] and report["check"]["max_rel"] <= 1e-4
    assert len(report["check"]["outputs"]) == 9
    assert json.loads((tmp_path / "lint.json").read_text())["clean"]
    again = io.load(tmp_path / "model.prototxt", tmp_path / "model.caffemodel").graph
    assert [again.caffe_name(b) for b in again.outputs] == report["outputs"]


def test_drift_is_blamed_on_the_pass(monkeypatch):
    from nnbuild.passes import fold_batchnorm as fb

    real = fb.bn_affine
    monkeypatch.setattr(fb, "bn_affine", lambda bn, sc: tuple(v * 1.01 for v in real(bn, sc)))
    recipe = base_recipe("_base/retinaface-mnet25.yaml")
    graph = io.load(RF / "mnet.prototxt", RF / "mnet.caffemodel").graph
    result = patching.patch_model(graph, RecipeSpec.from_data(recipe), [PHOTO])
    assert result["report"]["check"]["culprit"] == "fold_batchnorm"
    assert str(result["failure"]).startswith("pass fold_batchnorm: changed the network's outputs")


def test_cli_patch_writes_cpu_part(tmp_path, capsys):
    rc = main(["patch", str(YU / "yufacedetectnet-open-v1.prototxt"),
               str(YU / "yufacedetectnet-open-v1.caffemodel"), "--passes",
               "set_input_shape,drop_layers,cpu_split", "--input-shape", "1,3,240,320",
               "--images", str(PHOTO), "--color", "BGR", "--mean", "104,117,123",
               "-o", str(tmp_path)])
    assert rc == 0
    assert (tmp_path / "cpu.prototxt").is_file() and (tmp_path / "cpu.caffemodel").is_file()
    out = capsys.readouterr().out
    assert "max rel diff 0 " in out


def test_cli_patch_user_error_is_one_line(tmp_path, capsys):
    rc = main(["patch", str(RF / "mnet.prototxt"), str(RF / "mnet.caffemodel"), "--passes",
               "set_input_shape,remove_crop", "--input-shape", "600x600", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "crop1" in err and "576x576 (below), 601x601 (above)" in err


def test_cli_sizes_model(capsys):
    rc = main(["sizes", "--model", str(RF / "mnet.prototxt"), "--range", "560:620"])
    out = capsys.readouterr().out
    assert rc == 0 and "valid heights: 569-576, 601-608" in out
    assert main(["sizes", "--model", str(RF / "mnet.prototxt"), "--check", "600x600"]) == 0
    assert "crop1 crops" in capsys.readouterr().out
    assert main(["sizes", "--model", str(RF / "mnet.prototxt"), "--range", "9:1"]) == 2


def test_high_precision_list_appends_mark_high_precision_once():
    from nnbuild.passes.patching import pass_specs

    def spec(data):
        return RecipeSpec.from_data({"input": {"color": "RGB"}, **data})

    recipe = {"patches": ["set_input_shape"], "quant": {"mode": "mixed", "high_precision": ["c1"]}}
    assert pass_specs(spec(recipe)) == ["set_input_shape", "mark_high_precision"]
    placed = {"patches": [{"mark_high_precision": {"layers": ["c1"]}}, "nnie_order"],
              "quant": {"high_precision": ["c1"]}}
    assert pass_specs(spec(placed)) == placed["patches"]
    assert pass_specs(spec({"patches": ["set_input_shape"], "quant": {"mode": "int8"}})) == \
        ["set_input_shape"]
