"""Regenerates ``caffe_pb2.py`` from ``caffe.proto`` with the pinned protoc of grpcio-tools.

The generated module is committed (users need only the protobuf runtime); a test regenerates it
into a temporary directory and fails when the committed file has drifted from the schema.
Run ``python -m nnbuild.caffe.codegen`` after editing ``caffe.proto``.
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

from nnbuild.errors import NNBuildError

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# -I at the repository root makes the proto's registered name "nnbuild/caffe/caffe.proto", so it
# cannot clash with another "caffe.proto" (e.g. pycaffe's) loaded in the same process.
INCLUDE_ROOT = PACKAGE_DIR.parent.parent
PROTO = PACKAGE_DIR / "caffe.proto"
GENERATOR = "grpcio-tools==1.85.1"


def generate(out_dir: pathlib.Path) -> pathlib.Path:
    """Run protoc on caffe.proto and return the path of the generated ``caffe_pb2.py``.

    Args:
        out_dir: directory to write into; the module lands in ``out_dir/nnbuild/caffe/``.

    Raises:
        NNBuildError: grpc_tools is not installed, or protoc rejected the schema.
    """
    try:
        from grpc_tools import protoc  # pinned dev/test dependency, never needed at runtime
    except ImportError as err:
        raise NNBuildError("nnbuild.caffe.codegen", "grpc_tools is not importable",
                           expected=GENERATOR, got=str(err),
                           hint=f"pip install '{GENERATOR}'") from err
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", f"-I{INCLUDE_ROOT}", f"--python_out={out_dir}",
            str(PROTO.relative_to(INCLUDE_ROOT))]
    status = protoc.main(args)
    target = out_dir / "nnbuild" / "caffe" / "caffe_pb2.py"
    if status != 0 or not target.is_file():
        raise NNBuildError(str(PROTO), "protoc failed to compile the schema",
                           expected="exit status 0", got=status,
                           hint="run the command again to see protoc's messages on stderr")
    return target


def main() -> int:
    """Regenerate ``nnbuild/caffe/caffe_pb2.py`` in place."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(generate(pathlib.Path(tmp)), PACKAGE_DIR / "caffe_pb2.py")
    print(f"wrote {PACKAGE_DIR / 'caffe_pb2.py'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
