"""The configuration reference, generated from the config classes: `python -m pipeline.config.reference`.

Every key of every block, with its type, bounds (from `bounds.bounded`), default and the description
from its class's `Attributes:` docstring section. `docs/configuration.md` is this module's output; a test
regenerates it and fails when the file is stale.
"""

import dataclasses
import inspect
import json
import re
import sys
import typing

from pipeline.config import bounds, common, loader, schemas as schemas_lib

_ATTRIBUTE = re.compile(r"^(\s*)(\w+): (.*)$")

INTRODUCTION = """\
# Configuration reference

Generated from the config classes in `pipeline/config/` by
`python -m pipeline.config.reference > docs/configuration.md`; edit the classes' docstrings, not this file
(`tests/test_config_reference.py` fails when it is stale).

A run is one YAML file; several merge left to right (later files win, nested blocks merge key by key), then
each `--set a.b=c` applies (the value is parsed as YAML). A CONFIG argument that is not a file names a
config shipped with the package (`pipeline train quickstart`, `pipeline train tiny/sentiment`). Unknown
keys, wrong types and values outside their bounds fail before anything runs, naming the dotted key.

**Relative paths** in a config (data files, `runtime.run_dir`, `export.dir`, `model.encoder.weights`, ...)
are relative to the working directory, whether the config is your own file or a shipped one and whether
the package is installed or run from a checkout: the configs that read `../shared/data` run from the
repository root, and `pipeline train quickstart` writes `runs/quickstart/` and `exports/quickstart/` under
the directory it is started in.

The top-level `task` key picks the task's `data`, `model` and `train` blocks; `train`, `export` and
`runtime` keys that every task shares are listed once.
"""


def attribute_descriptions(cls) -> dict[str, str]:
    """Field name -> description from the `Attributes:` sections of `cls` and its bases (nearest class wins)."""
    descriptions: dict[str, str] = {}
    for klass in reversed(inspect.getmro(cls)):
        descriptions.update(_docstring_attributes(inspect.getdoc(klass) or "") if klass.__doc__ else {})
    return descriptions


def _docstring_attributes(docstring: str) -> dict[str, str]:
    found, current, indent, inside = {}, None, None, False
    for line in docstring.splitlines():
        if line.strip() == "Attributes:":
            inside, current, indent = True, None, None
            continue
        if not inside:
            continue
        if not line.strip():
            current = None
            continue
        match = _ATTRIBUTE.match(line)
        depth = len(line) - len(line.lstrip())
        if match and (indent is None or depth == indent):
            indent, current = depth, match.group(2)
            found[current] = match.group(3).strip()
        elif current is not None and indent is not None and depth > indent:
            found[current] += " " + line.strip()
        else:
            inside = False
    return found


def _default(field: dataclasses.Field) -> str:
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
        return "required"
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    if dataclasses.is_dataclass(value):
        return "(block)"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def _type(field: dataclasses.Field, hint) -> str:
    text = loader.type_name(hint)
    interval = bounds.of(field)
    return f"{text}, {interval.describe()}" if interval is not None else text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def block_table(cls, prefix: str, exclude: typing.Optional[type] = None) -> list[str]:
    """Markdown rows (header included) for one block; nested blocks follow as tables of their own.

    Args:
        cls: The block's dataclass.
        prefix: Dotted path of the block, e.g. `model.`.
        exclude: A base class whose fields are left out (listed elsewhere).
    """
    hints = typing.get_type_hints(cls)
    skipped = {field.name for field in dataclasses.fields(exclude)} if exclude else set()
    descriptions = attribute_descriptions(cls)
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    nested = []
    for field in dataclasses.fields(cls):
        if field.name in skipped:
            continue
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            nested.append((f"{prefix}{field.name}", hint))
            per_task = not prefix and field.name in ("data", "model")
            type_text = "block (per task, below)" if per_task else f"block (`{prefix}{field.name}` below)"
        else:
            type_text = _type(field, hint)
        lines.append(f"| `{prefix}{field.name}` | {_cell(type_text)} | {_cell(_default(field))} | "
                     f"{_cell(descriptions.get(field.name, ''))} |")
    for name, block in nested:
        if name in ("data", "model"):
            continue  # per task, below
        lines += ["", f"`{name}` ({block.__name__}): {_summary(block)}", ""] + block_table(block, f"{name}.")
    return lines


def _summary(cls) -> str:
    return (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")


def render(schemas: typing.Optional[typing.Mapping[str, common.TaskSchema]] = None) -> str:
    """The whole reference as Markdown."""
    schemas = schemas_lib.SCHEMAS if schemas is None else schemas
    lines = [INTRODUCTION, "## Every run", "", _summary(common.RunConfig), ""]
    lines += block_table(common.RunConfig, "")
    for name, schema in schemas.items():
        lines += ["", f"## `task: {name}`", "",
                  f"`train.monitor` is one of {', '.join(f'`{choice}`' for choice in schema.monitor_choices)}.", ""]
        for block_name, block in (("data", schema.data), ("model", schema.model), ("train", schema.train)):
            if block_name == "train":
                if block is common.TrainConfig:
                    continue
                lines += [f"### `train` ({block.__name__})", "", "The shared `train` keys, and:", ""]
                lines += block_table(block, "train.", exclude=common.TrainConfig) + [""]
                continue
            lines += [f"### `{block_name}` ({block.__name__})", "", _summary(block), ""]
            lines += block_table(block, f"{block_name}.") + [""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
