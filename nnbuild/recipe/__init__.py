"""Recipes: the only code that reads recipe files — loading (YAML, ``extends``, ``matrix``,
paths) in ``load``, the JSON Schema in ``schema``, the typed spec in ``spec``."""
