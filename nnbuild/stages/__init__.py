"""The six pipeline stages, one module each (fetch, patch, calibrate, map, check, package).

Each is a declaration (``NAME``, ``NEEDS``, ``READS``, ``OUTPUTS``) plus a thin ``run(ctx)``;
the registry and the machinery that runs them live in ``nnbuild.build``.
"""
