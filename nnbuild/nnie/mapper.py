"""The external nnie_mapper: find it, fingerprint its version, run it on a cfg, collect the .wk.

nnie_mapper is HiSilicon's closed compiler (``nnie_mapper_11`` / ``nnie_mapper_12``, nnie-facts.md
§1). nnbuild never needs it — the builtin quantizer simulates it — but when a user has one
(``mapper.path`` in the recipe, else ``$NNIE_MAPPER``) the map stage also runs it to get the
board's ``<name>.wk``. A real run can take hours (§2: ~2 h for MobileFaceNet), so there is no
default timeout and the log streams to a file instead of memory.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pathlib
import re
import subprocess
from typing import Sequence

from nnbuild.errors import MapperError
from nnbuild.nnie.chips import DEFAULT_CHIP

ENV_VAR = "NNIE_MAPPER"
LOG_NAME = "mapper.log"
VERSION_RE = re.compile(r"nnie_mapper_(1[12])")
# nnie_mapper run without arguments prints "Mapper Version 1.2.x.y_Bzzz (NNIE_1.2) ..." (the
# stand-in: "... version 1.2.0.0-standin"): NNIE major.minor, 1.1 or 1.2 (nnie-facts.md §1).
BANNER_RE = re.compile(r"version\s*:?\s*v?1\.(\d+)\.", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class MapperResult:
    """A finished mapper run: the .wk it wrote and its captured log (stdout + stderr)."""

    wk: pathlib.Path
    log: pathlib.Path


def find_mapper(recipe_mapper_path: str | os.PathLike | None = None,
                chip: str = DEFAULT_CHIP) -> pathlib.Path | None:
    """The nnie_mapper to run: the recipe's ``mapper.path``, else ``$NNIE_MAPPER``, else None.

    The chip decides the mapper version (nnie-facts.md §1: a .wk for the wrong version fails to
    load on the board), so a file named ``nnie_mapper_11*`` for a version-12 chip, or the other
    way round, is refused. A name that shows no version cannot be checked here.

    Raises:
        MapperError: the file does not exist, is not executable, or is for the wrong version.
    """
    from nnbuild.nnie.chips import get_chip

    where = "mapper.path" if recipe_mapper_path else ENV_VAR
    path = recipe_mapper_path or os.environ.get(ENV_VAR) or None
    if path is None:
        return None
    exe = pathlib.Path(path).expanduser()
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise MapperError(where, "nnie_mapper is not an executable file",
                          expected="nnie_mapper_11/12", got=str(exe),
                          hint=f"fix the path or unset {ENV_VAR} to use the builtin mapper")
    wanted = get_chip(chip).mapper_version
    found = VERSION_RE.search(exe.name)
    if found and int(found.group(1)) != wanted:
        raise MapperError(where, f"wrong mapper version for {chip}",
                          expected=f"nnie_mapper_{wanted}", got=exe.name,
                          hint="a .wk built by the other version fails to load on the board")
    check_banner(exe, wanted, where)
    return exe


def check_banner(exe: pathlib.Path, wanted: int, where: str) -> None:
    """Refuse ``exe`` unless its banner (``mapper_version``) names NNIE 1.<wanted - 10>.

    A recipe's ``mapper.path`` names a program nnbuild runs: ``/bin/true`` or any other program
    must not get as far as the real run (recipes are trusted like Makefiles, but a wrong path
    should not run something else for hours or "succeed" with no .wk).
    """
    banner = mapper_version(exe).split(" ", 2)[2:]
    found = BANNER_RE.search(banner[0]) if banner else None
    if not found:
        raise MapperError(where, "not an nnie_mapper: no version banner", expected="a banner like "
                          "'Mapper Version 1.2.x' when run without arguments",
                          got=repr(banner[0]) if banner else "no output",
                          hint=f"point it at HiSilicon's nnie_mapper_{wanted} or unset it")
    if 10 + int(found.group(1)) != wanted:
        raise MapperError(where, "wrong mapper version in its banner",
                          expected=f"NNIE 1.{wanted - 10} (nnie_mapper_{wanted})",
                          got=repr(banner[0]),
                          hint="a .wk built by the other version fails to load on the board")


def mapper_version(exe: str | os.PathLike) -> str:
    """Version fingerprint for the stage key: the banner line plus the executable's sha256.

    The banner is what the mapper prints when run without arguments (its first line mentioning a
    version, else its first line). The hash makes two builds of one version distinct too.
    """
    exe = pathlib.Path(exe)
    stat = exe.stat()
    return _version(str(exe.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _version(exe: str, size: int, mtime_ns: int) -> str:
    """``mapper_version`` cached per (path, size, mtime): the no-op build asks for it every time."""
    digest = hashlib.sha256()
    with open(exe, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    try:
        proc = subprocess.run([exe], capture_output=True, text=True, errors="replace", timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MapperError(exe, f"cannot run nnie_mapper to read its version ({err})",
                          hint="check that the file is a working nnie_mapper") from None
    output = (proc.stdout + "\n" + proc.stderr).splitlines()
    lines = [line.strip() for line in output if line.strip()]
    banner = next((line for line in lines if "version" in line.lower()), lines[0] if lines else "")
    return f"{pathlib.Path(exe).name} sha256:{digest.hexdigest()} {banner}".strip()


def cfg_value(cfg_text: str, key: str) -> str | None:
    """The value of ``[key]`` in a cfg text (first occurrence), or None."""
    for line in cfg_text.splitlines():
        if line.startswith(f"[{key}]"):
            return line.split("]", 1)[1].strip()
    return None


def _tail(log: pathlib.Path, lines: int) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    kept = [line.strip() for line in text if line.strip()][-lines:]
    return " | ".join(kept) if kept else "(empty log)"


def run_mapper(exe: str | os.PathLike, cfg: str | os.PathLike, *, cwd: str | os.PathLike,
               wk_name: str | None = None, timeout: float | None = None,
               tail_lines: int = 15) -> MapperResult:
    """Run ``exe cfg`` in ``cwd`` and return the .wk it wrote.

    Everything the cfg names must already be in ``cwd`` under its package-relative path; the map
    stage copies them into a scratch directory, so a failed run leaves no partial outputs.

    Args:
        exe: the nnie_mapper executable.
        cfg: the cfg file (relative to ``cwd`` or absolute).
        cwd: the working directory the cfg's relative paths resolve from.
        wk_name: expected ``<name>`` of ``<name>.wk``; default: the cfg's ``instruction_name``.
        timeout: seconds before the run is killed (None: wait; real runs can take hours).
        tail_lines: how many log lines a failure message quotes.

    Returns:
        ``MapperResult(wk, log)`` with ``log`` = ``cwd/mapper.log`` (stdout and stderr).

    Raises:
        MapperError: the mapper could not start, timed out, exited non-zero, or wrote no .wk; the
            message ends with the last lines of its log.
    """
    cwd = pathlib.Path(cwd)
    cfg_path = cwd / cfg
    if not cfg_path.is_file():
        raise MapperError(str(cfg_path), "mapper cfg not found",
                          hint="write the cfg before running")
    name = wk_name or cfg_value(cfg_path.read_text(encoding="utf-8"), "instruction_name")
    if not name:
        raise MapperError(str(cfg_path), "cfg has no instruction_name",
                          expected="[instruction_name] <name>", got="nothing")
    wk, log = cwd / f"{name}.wk", cwd / LOG_NAME
    wk.unlink(missing_ok=True)
    _execute([str(exe), os.path.relpath(cfg_path, cwd)], cwd, log, timeout, tail_lines)
    if not wk.is_file():
        raise MapperError(str(exe), "nnie_mapper finished but wrote no .wk", expected=wk.name,
                          got=f"no file; log: {_tail(log, tail_lines)}")
    return MapperResult(wk, log)


def _execute(argv: Sequence[str], cwd: pathlib.Path, log: pathlib.Path, timeout: float | None,
             tail_lines: int) -> None:
    """Run ``argv`` with output streamed to ``log``; raise MapperError on any failure."""
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MapperError(argv[0], f"nnie_mapper timed out after {timeout} s",
                              hint=f"log: {_tail(log, tail_lines)}") from None
        except OSError as err:
            raise MapperError(argv[0], f"cannot start nnie_mapper ({err.strerror})",
                              hint=f"check {ENV_VAR} / mapper.path") from None
    if proc.returncode != 0:
        raise MapperError(argv[0], "nnie_mapper failed", expected="exit status 0",
                          got=f"{proc.returncode}; log: {_tail(log, tail_lines)}")


def bgr_list_to_png(list_path: str | os.PathLike, shape: Sequence[int]) -> int:
    """Rewrite an image list of planar ``.bgr`` files to lossless PNG copies, in place.

    The mapper reads calibration pictures with OpenCV (nnie-facts.md §2: "OpenCV-readable
    formats"), which cannot decode headerless planar files. The PNGs hold exactly the pixels of
    the ``.bgr`` files, so the real mapper calibrates on what the builtin one did. One-plane
    ``.gray`` frames (1-channel networks, ``input.format: gray``) become 8-bit grayscale PNGs of
    the same bytes. Run this on the scratch copy of ``image_list.txt``, never on a stage output.

    Args:
        list_path: the image list; relative entries resolve against its directory.
        shape: network input size, (H, W) or (N, C, H, W).

    Returns:
        How many entries were converted.
    """
    import numpy as np
    from PIL import Image

    from nnbuild.preprocess import read_planar_bgr

    list_path = pathlib.Path(list_path)
    entries = [line.strip() for line in list_path.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    out, converted = [], 0
    for entry in entries:
        suffix = pathlib.PurePath(entry).suffix.lower()
        if suffix in (".bgr", ".gray"):
            source = list_path.parent / entry
            pixels = read_planar_bgr(source, shape) if suffix == ".bgr" else \
                np.fromfile(source, dtype=np.uint8).reshape(tuple(shape)[-2:])
            Image.fromarray(pixels).save(source.with_suffix(".png"))
            entry, converted = entry[:-len(suffix)] + ".png", converted + 1
        out.append(entry)
    list_path.write_text("".join(f"{e}\n" for e in out), encoding="utf-8")
    return converted


def mapper_for_recipe(spec) -> pathlib.Path | None:
    """``find_mapper`` with the recipe's (``RecipeSpec``) ``mapper.path`` and ``target.chip``."""
    return find_mapper(spec.mapper.path, spec.target.chip)
