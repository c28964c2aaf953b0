"""Shared fixtures: where ../shared is, and small helpers every test module may use."""

from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
IMAGES = SHARED / "images"


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
