"""doit entry point. The tasks come from nnbuild's loader plugin (pyproject.toml [tool.doit]):
`doit build RECIPE`, `doit list`, `doit build` (every recipe). Nothing to define here."""
