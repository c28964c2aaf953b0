"""nnbuild: declarative, cached builds of Caffe models for HiSilicon NNIE chips."""

__version__ = "0.1.0"
