"""Caffe model files: the protobuf schema (``caffe_pb2``) and prototxt/caffemodel I/O (``io``)."""
