"""Shared fixtures: where ../shared is, and small helpers every test module may use."""

from __future__ import annotations

import os
import pathlib

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one BLAS thread each, or they fight over the cores.
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
IMAGES = SHARED / "images"


# Modules that share session fixtures run on one xdist worker, so each fixture is built once.
SHARED_FIXTURE_GROUPS = {"tests/board/": "board", "tests/check/test_suggest": "retinaface_int8"}


def _group(path: str) -> str:
    return next((g for prefix, g in SHARED_FIXTURE_GROUPS.items() if path.startswith(prefix)),
                path)


def _path(item) -> str:
    return item.nodeid.split("::")[0]


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist: send each module whole to one worker (its module fixtures are built once),
    and modules sharing a session fixture together (``SHARED_FIXTURE_GROUPS``). xdist's own
    ``loadgroup`` cannot do it under pytest 9 (it renames node ids, which pytest 9 no longer
    lets it), so this is ``loadscope`` with nnbuild's scope."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid.split("::")[0])

    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config, items):
    """Order for pytest-xdist (``-n auto`` in pyproject's addopts; the scheduler above takes
    groups in collection order): groups holding a ``slow`` test come first, the README
    walk-through (the longest single test) before all, so the short tests fill the gaps at the
    end instead of one long test running alone."""
    slow: dict[str, bool] = {}
    for item in items:
        group = _group(_path(item))
        slow[group] = slow.get(group, False) or item.get_closest_marker("slow") is not None

    def rank(item) -> int:
        path = _path(item)
        return 0 if path == "tests/test_readme.py" else 1 if slow[_group(path)] else 2

    items.sort(key=rank)


@pytest.fixture(scope="session")
def shared() -> pathlib.Path:
    assert SHARED.is_dir(), f"{SHARED} is missing: tests read the real models and photos there"
    return SHARED


@pytest.fixture(scope="session")
def moto_endpoint():
    """``http://127.0.0.1:PORT`` of a moto S3 server (a real S3 API, in this process) running
    for the whole session: the team cache's tests (tests/build/test_remote*.py)."""
    from moto.server import ThreadedMotoServer

    from fakestages.remote import free_port

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def s3_remote(moto_endpoint, monkeypatch):
    """``s3://<new bucket>/team`` on the moto server; the environment gets dummy credentials and
    ``NNBUILD_REMOTE_ENDPOINT`` (subprocesses started with ``os.environ`` inherit them)."""
    import uuid

    import s3fs

    from fakestages.remote import DUMMY_CREDENTIALS

    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NNBUILD_REMOTE_ENDPOINT", moto_endpoint)
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=moto_endpoint, skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/team"

