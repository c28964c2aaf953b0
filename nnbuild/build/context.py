"""StageContext: everything a stage function may touch while it runs (docs/design.md "Stages")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator

from nnbuild.errors import NNBuildError


class StageContext:
    """What the runner hands to ``stage.run(ctx)``.

    Attributes:
        name: recipe name.
        stage: stage name.
        spec: the typed recipe (``nnbuild.recipe.spec.RecipeSpec``): what stages read.
        recipe: the resolved recipe dict (paths absolute), only for packaging it as written.
        out: empty staging directory; every file written below it is an output.
        scratch: persistent per-recipe, per-stage directory for sub-results (never in the key;
            each sub-result's own key must include ``code_digest`` of the code computing it).
        upstream_keys: ``{stage: key}`` of the stages this one needs (and theirs).
        failure: the error recorded by ``fail``, if any.
    """

    def __init__(self, *, name: str, stage: str, recipe: dict, out: Path, scratch: Path,
                 upstream_dirs: dict[str, Path], fetch_group: Callable[[str], list[Path]],
                 upstream_keys: dict[str, str], spec=None,
                 code_digest: Callable[[str], str] | None = None,
                 log: Callable[[str], None] | None = None):
        if spec is None:  # a context made outside the runner (tests, tools): type the dict
            from nnbuild.recipe.spec import RecipeSpec

            spec = RecipeSpec.from_data(recipe, name)
        self.name, self.stage, self.spec, self.recipe = name, stage, spec, recipe
        self.out, self.scratch = out, scratch
        self.upstream_keys = upstream_keys
        self.failure: NNBuildError | None = None
        self._upstream_dirs = upstream_dirs
        self._fetch_group = fetch_group
        self._code_digest = code_digest
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def upstream(self, stage: str) -> Path:
        """Directory with the outputs of ``stage`` (read only).

        Raises:
            NNBuildError: ``stage`` is not in this stage's ``NEEDS`` chain.
        """
        try:
            return self._upstream_dirs[stage]
        except KeyError:
            raise NNBuildError(f"stage {self.stage}", f"asked for outputs of {stage!r}",
                               expected="one of " + ", ".join(self._upstream_dirs), got=stage,
                               hint="add it to the stage module's NEEDS") from None

    def files(self, group: str) -> list[Path]:
        """Verified local copies of ``external_inputs(spec)[group]``, sorted by sha256."""
        return self._fetch_group(group)

    def code_digest(self, module: str) -> str:
        """Fingerprint of the import closure of ``module`` (``build.fingerprint``): part of
        the key of every sub-result a stage caches (e.g. per-image check results), so that an
        edit of the code that computed a cached result never lets it be served again."""
        if self._code_digest is None:  # a context made outside the runner (tests, tools)
            from nnbuild.build.fingerprint import Fingerprints
            from nnbuild.hashing import StatCache

            self._code_digest = Fingerprints(StatCache(None)).digest
        return self._code_digest(module)

    def log(self, message: str) -> None:
        """One log line, prefixed with the stage and recipe."""
        self._log(f"{self.stage}:{self.name}: {message}")

    def fail(self, err: NNBuildError) -> None:
        """Record a gate failure: the outputs are still cached, then the stage fails with ``err``."""
        self.failure = err

    def progress(self, iterable: Iterable, total: int | None = None, desc: str = "") -> Iterator:
        """Iterate with a progress bar on a terminal, or a few plain log lines otherwise."""
        from nnbuild.build.progress import progress

        return progress(iterable, total, desc or self.stage, self.log)
