"""The configs that ship with the package, found by name: `pipeline train quickstart`, `tiny/sentiment`.

A CONFIG argument that names an existing file is that file. Otherwise it is looked up among the shipped
configs: `quickstart`, `quickstart.yaml` and `configs/quickstart.yaml` all find the same file, from any
working directory. In a repository checkout the shipped configs are `configs/`; in an installed package
they are `pipeline/configs/` (pyproject.toml maps the one onto the other).

Relative paths *inside* a config (data files, `runtime.run_dir`, `export.dir`, weights) are read relative
to the working directory, whichever way the config was found and whether the package is installed or run
from a checkout. So `configs/sentiment_sst2.yaml`, whose data lies in `../shared/data`, runs from the
repository root, and `pipeline train quickstart` writes `runs/quickstart` and `exports/quickstart` under
the directory it is started in.
"""

import os
import pathlib

from pipeline.config import errors

SUFFIX = ".yaml"
_PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def directory() -> pathlib.Path:
    """The folder of shipped configs: `pipeline/configs/` when installed, else the checkout's `configs/`."""
    installed = _PACKAGE / "configs"
    return installed if installed.is_dir() else _PACKAGE.parent / "configs"


def names() -> list[str]:
    """Every shipped config's name, e.g. `quickstart`, `tiny/sentiment`, sorted."""
    root = directory()
    return sorted(path.relative_to(root).with_suffix("").as_posix() for path in root.rglob(f"*{SUFFIX}"))


def resolve(argument: str) -> str:
    """The file a CONFIG argument means: the file itself when it exists, else the shipped config of that name.

    Raises:
        ConfigError: Neither a file nor a shipped config; the message lists the shipped names.
    """
    if os.path.exists(argument):
        return argument
    name = argument.removeprefix(f"configs{os.sep}").removeprefix("configs/").removesuffix(SUFFIX)
    candidate = directory() / f"{name}{SUFFIX}"
    if name and candidate.is_file():
        return str(candidate)
    available = names()
    raise errors.ConfigError(f"{argument}: config file not found, and no shipped config has that name."
                             f"{errors.did_you_mean(name, available)} Shipped configs: {', '.join(available)}")
