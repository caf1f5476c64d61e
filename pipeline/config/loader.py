"""Reading and writing run configs: YAML files merged left to right, `--set a.b=c` overrides, typed building.

The dataclasses are built from their type hints; every error names the dotted path of the key, what was
expected and what was found, with a did-you-mean hint for misspelt keys and choices. The top-level `task:`
key picks the task's blocks from a mapping of task name to `TaskSchema` (this package's `SCHEMAS` unless
the caller passes its own).
"""

import dataclasses
import os
import types
import typing
from typing import Literal, Optional, Union

import yaml

from pipeline.config import common, errors, schemas as schemas_lib, shipped

Schemas = typing.Mapping[str, common.TaskSchema]


def merge(base: dict, update: dict) -> dict:
    """Merges `update` into a copy of `base`; nested dicts merge, everything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_override(tree: dict, override: str) -> dict:
    """Applies one `a.b.c=value` override; the value is parsed as YAML (`3`, `0.1`, `true`, `[1, 2]`, `null`)."""
    key, separator, text = override.partition("=")
    if not separator or not key.strip():
        raise errors.ConfigError(f"--set {override!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise errors.ConfigError(f"--set {override!r}: value is not valid YAML ({_yaml_problem(error)})") from None
    update = value
    for part in reversed(key.strip().split(".")):
        update = {part: update}
    return merge(tree, update)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where (1-based line and column)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def read_yaml(path: str) -> dict:
    """Reads one YAML config file as a dict, with errors that name the file."""
    try:
        with open(path, encoding="utf-8") as stream:
            tree = yaml.safe_load(stream)
    except FileNotFoundError:
        raise errors.ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        raise errors.ConfigError(f"{path}: invalid YAML: {_yaml_problem(error)}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise errors.ConfigError(f"{path}: expected a mapping of config blocks, found {type(tree).__name__}")
    return tree


def load_config(paths: typing.Sequence[str], overrides: typing.Sequence[str] = (),
                schemas: Optional[Schemas] = None) -> common.RunConfig:
    """Loads YAML files (later ones win), applies `--set` overrides and builds a checked `RunConfig`.

    Args:
        paths: YAML files, merged left to right; a name that is not a file is a shipped config
            (`quickstart`, `tiny/sentiment`; see `shipped`).
        overrides: `a.b.c=value` strings applied after the files, in order.
        schemas: Task name -> `TaskSchema` for the `task:` key; null uses this package's `SCHEMAS`.
    """
    tree: dict = {}
    for path in paths:
        tree = merge(tree, read_yaml(shipped.resolve(path)))
    for override in overrides:
        tree = apply_override(tree, override)
    return from_tree(tree, schemas)


def from_tree(tree: dict, schemas: Optional[Schemas] = None) -> common.RunConfig:
    """Builds a `RunConfig` from a plain dict, picking the task's blocks from `schemas` (default `SCHEMAS`)."""
    if not isinstance(tree, dict):
        raise errors.ConfigError(f"config: expected a mapping, found {type(tree).__name__}")
    schemas = schemas_lib.SCHEMAS if schemas is None else schemas
    schema = _task_schema(tree.get("task"), schemas)
    blocks = {"data": schema.data, "model": schema.model, "train": schema.train}
    # The train block is built even when absent, so a task's own train class supplies its defaults.
    config = _build_dataclass(common.RunConfig, {**tree, "train": tree.get("train", {})}, "", blocks)
    if config.train.monitor not in schema.monitor_choices:
        raise errors.choice_error("train.monitor", config.train.monitor, schema.monitor_choices)
    if config.train.monitor in schema.scored_monitors and not config.train.validation_every:
        raise errors.ConfigError(f"train.validation_every: must be >= 1 with train.monitor "
                                 f"{config.train.monitor!r}, which the validation scorer computes (got 0)")
    if config.train.layer_group_keys() and not schema.has_layer_groups:
        grouped = sorted(name for name, task_schema in schemas.items() if task_schema.has_layer_groups)
        raise errors.ConfigError(f"{config.train.layer_group_keys()[0]}: the {config.task} task has no layer "
                                 f"groups to fine-tune (tasks that have: {', '.join(grouped) or 'none'}); "
                                 "leave it unset")
    return config


def _task_schema(task, schemas: Schemas) -> common.TaskSchema:
    if task is None:
        raise errors.ConfigError(f"task: required field is missing; one of {sorted(schemas)}")
    if not isinstance(task, str):
        raise errors.ConfigError(f"task: expected str, got {task!r} ({type(task).__name__})")
    if task not in schemas:
        raise errors.choice_error("task", task, sorted(schemas))
    return schemas[task]


def _build_dataclass(cls, values, path: str, hint_overrides: Optional[dict] = None):
    if not isinstance(values, dict):
        raise errors.ConfigError(f"{path or 'config'}: expected a mapping of keys, found {values!r} "
                                 f"({type(values).__name__})")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise errors.ConfigError(f"{where}: unknown key.{errors.did_you_mean(key, fields)} "
                                     f"Valid keys: {', '.join(fields)}")
    hints = {**typing.get_type_hints(cls), **(hint_overrides or {})}
    arguments = {}
    for name, field in fields.items():
        where = f"{path}.{name}" if path else name
        if name in values:
            arguments[name] = _convert(values[name], hints[name], where)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            if not dataclasses.is_dataclass(hints[name]):
                raise errors.ConfigError(f"{where}: required field is missing")
            arguments[name] = _convert({}, hints[name], where)
    return cls(**arguments)


def type_name(hint) -> str:
    """A type hint in words, as error messages and the configuration reference show it: `int`, `one of 'a', 'b'`."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(member) for member in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {type_name(typing.get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def _convert(value, hint, path: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build_dataclass(hint, value, path)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise errors.choice_error(path, value, choices)
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(value, hint, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(value, hint, path)
        item_hint = typing.get_args(hint)[0]
        return tuple(_convert(item, item_hint, f"{path}[{index}]") for index, item in enumerate(value))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise _type_error(value, hint, path)


def _convert_union(value, hint, path: str):
    """The value as the first member of the union that accepts it; null where the union allows it."""
    members = typing.get_args(hint)
    if value is None and type(None) in members:
        return None
    for member in members:
        if member is type(None):
            continue
        try:
            return _convert(value, member, path)
        except errors.ConfigError:
            continue
    raise _type_error(value, hint, path)


def _type_error(value, hint, path: str) -> errors.ConfigError:
    return errors.ConfigError(f"{path}: expected {type_name(hint)}, got {value!r} ({type(value).__name__})")


def to_tree(config) -> dict:
    """Returns the config as plain YAML-ready data (tuples become lists)."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return value
    return plain(dataclasses.asdict(config))


def save_config(config: common.RunConfig, path: str) -> None:
    """Writes the resolved config; loading it back gives an equal `RunConfig`."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        yaml.safe_dump(to_tree(config), stream, sort_keys=False)
    os.replace(temporary, path)
