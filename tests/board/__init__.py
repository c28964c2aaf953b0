"""Board-side tests: generated C post-processing on the host, camera-frame inputs."""
