"""Which models to serve: `--model_name/--model_base_path` or a `models.config` (ModelServerConfig text proto).

The file format is TF Serving's own, parsed with its protobuf classes:

    model_config_list {
      config {
        name: "sentiment"
        base_path: "/models/sentiment"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
        version_labels { key: "canary" value: 2 }
      }
    }
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import typing

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

PLATFORM = "tensorflow"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
        name: Model name in requests.
        base_path: Folder holding integer-named version folders.
        policy: "latest" (the `num_versions` highest), "all", or "specific" (`versions`).
        num_versions: For "latest".
        versions: For "specific".
        labels: Version label -> version number.
    """
    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: frozenset = frozenset()
    labels: typing.Mapping[str, int] = dataclasses.field(default_factory=dict)

    def aspired_versions(self, available: typing.Iterable[int]) -> set[int]:
        """The versions this policy serves, out of those found on disk."""
        available = sorted(set(available))
        if self.policy == "all":
            return set(available)
        if self.policy == "specific":
            return set(available) & set(self.versions)
        return set(available[-self.num_versions:]) if available else set()


def from_flags(model_name: str, model_base_path: str) -> list[ModelConfig]:
    """The single model of `--model_name` / `--model_base_path` (latest version)."""
    if not model_base_path:
        raise ValueError("--model_base_path is required unless --model_config_file is given")
    return [ModelConfig(name=model_name, base_path=os.path.abspath(model_base_path))]


def read_config_file(path: str) -> list[ModelConfig]:
    """Reads a `model_config_list` text proto; relative base paths are relative to the working directory.

    Raises:
        ValueError: The file does not parse, or a model entry is invalid (the message names the file).
    """
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as error:
        raise ValueError(f"cannot read --model_config_file: {error}") from None
    return parse_config_text(text, path)


def parse_config_text(text: str, source: str = "<config>") -> list[ModelConfig]:
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"Invalid protobuf file: '{source}': {error}") from None
    return from_proto(config, source)


def from_proto(config: model_server_config_pb2.ModelServerConfig, source: str = "<config>") -> list[ModelConfig]:
    """The models of a ModelServerConfig (also what gRPC HandleReloadConfigRequest carries)."""
    if config.WhichOneof("config") == "custom_model_config":
        raise ValueError(f"{source}: custom_model_config is not supported; use model_config_list")
    models = [_model_from_proto(entry, source) for entry in config.model_config_list.config]
    names = [model.name for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{source}: model names must be unique; repeated: {duplicates}")
    return models


def _model_from_proto(entry: model_server_config_pb2.ModelConfig, source: str) -> ModelConfig:
    where = f"{source}: model {entry.name!r}"
    if not entry.name:
        raise ValueError(f"{source}: a config entry has no name")
    if not entry.base_path:
        raise ValueError(f"{where}: base_path is required")
    if entry.model_platform not in ("", PLATFORM):
        raise ValueError(f"{where}: model_platform {entry.model_platform!r} is not supported (only 'tensorflow')")
    policy = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
    versions = frozenset(entry.model_version_policy.specific.versions)
    if policy == "specific" and not versions:
        raise ValueError(f"{where}: model_version_policy.specific lists no versions")
    return ModelConfig(name=entry.name, base_path=os.path.abspath(entry.base_path), policy=policy,
                       num_versions=max(1, entry.model_version_policy.latest.num_versions),
                       versions=versions, labels=dict(entry.version_labels))


def config_text_for_exports(exports_dir: str, base_path_prefix: str = "/models") -> str:
    """A `models.config` serving every model folder of `exports_dir` (those with integer version folders).

    Args:
        exports_dir: The `export.dir` folder (`exports/<model_name>/<version>/`).
        base_path_prefix: Where `exports_dir` is seen by the server: `/models` in the official Docker image.

    Raises:
        FileNotFoundError: No model folder with versions was found.
    """
    if not os.path.isdir(exports_dir):
        raise FileNotFoundError(f"{exports_dir}: no such folder")
    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(os.listdir(exports_dir)):
        model_dir = os.path.join(exports_dir, name)
        if os.path.isdir(model_dir) and any(child.isdigit() and os.path.isdir(os.path.join(model_dir, child))
                                            for child in os.listdir(model_dir)):
            entry = config.model_config_list.config.add()
            entry.name = name
            entry.base_path = f"{base_path_prefix.rstrip('/')}/{name}"
            entry.model_platform = PLATFORM
    if not config.model_config_list.config:
        raise FileNotFoundError(f"{exports_dir}: no exports/<model_name>/<version>/ folders here")
    return text_format.MessageToString(config)


def write_config_file(path: str, text: str) -> None:
    """Writes a models.config atomically. An empty directory in its place (what `docker compose up` leaves
    when it starts before the file exists) is replaced; anything else there is an error.

    Raises:
        IsADirectoryError: `path` is a directory that is not empty.
    """
    if os.path.isdir(path):
        if os.listdir(path):
            raise IsADirectoryError(f"{path} is a directory that is not empty; remove it first")
        os.rmdir(path)
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".models.config.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def main(argv: typing.Optional[list[str]] = None) -> int:
    """`python serving/model_config.py exports/ --output serving/models.config`."""
    parser = argparse.ArgumentParser(prog="serving/model_config.py",
                                     description="Write a models.config serving every model of an exports folder.")
    parser.add_argument("exports_dir", help="the export.dir folder (exports/<model_name>/<version>/)")
    parser.add_argument("--output", "-o", help="file to write (default: print it)")
    parser.add_argument("--base_path_prefix", default="/models",
                        help="where the server sees exports_dir (default /models, the Docker image's mount)")
    arguments = parser.parse_args(argv)
    try:
        text = config_text_for_exports(arguments.exports_dir, arguments.base_path_prefix)
        if arguments.output:
            write_config_file(arguments.output, text)
        else:
            sys.stdout.write(text)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
