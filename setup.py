"""Package list for setuptools (everything else is in pyproject.toml): nnbuild's packages plus
``nnbuild.zoo``, which pyproject.toml maps onto the checkout's ``recipes/`` folder."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["nnbuild", "nnbuild.*"]) + ["nnbuild.zoo"])
