"""Sub-commands of the ``nnbuild`` CLI, one module each (see ``nnbuild.cli``)."""
