"""Task post-processing (decoders such as RetinaFace's) and the check stage's task metrics."""
