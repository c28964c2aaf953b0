"""Test helper for the team cache: dummy AWS credentials and a free local TCP port."""

import socket

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-key-id",
                     "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
                     "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    """A TCP port nobody listens on right now (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
