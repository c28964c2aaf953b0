"""Fixtures of the build tests: a real S3 API (moto in server mode on 127.0.0.1), started once
per session and stopped at its end, and a fresh bucket per test with dummy credentials."""

from __future__ import annotations

import uuid

import pytest

from fakestages.remote import DUMMY_CREDENTIALS, free_port


@pytest.fixture(scope="session")
def moto_endpoint():
    """``http://127.0.0.1:PORT`` of a moto S3 server running for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def s3_remote(moto_endpoint, monkeypatch):
    """``s3://<new bucket>/team`` on the moto server; env holds dummy credentials and
    ``NNBUILD_REMOTE_ENDPOINT`` (also for subprocesses started with ``os.environ``)."""
    import s3fs

    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NNBUILD_REMOTE_ENDPOINT", moto_endpoint)
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=moto_endpoint, skip_instance_cache=True).mkdir(bucket)
    return f"s3://{bucket}/team"
