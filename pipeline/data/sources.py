"""The source a run reads, named by `data.source`: `files`, `tfds:<name>` or `synthetic:<task>`.

Every task's data module reads its raw splits through `load_splits`, handing it one loader per kind: the
loaders know the task's formats; this module knows the source string and how synthetic splits are drawn.
"""

import dataclasses
import difflib
import typing

from pipeline.data import files

KINDS = ("files", "tfds", "synthetic")
SPLITS = ("train", "validation", "test")

Split = typing.TypeVar("Split")


@dataclasses.dataclass(frozen=True)
class Source:
    """A parsed `data.source`.

    Attributes:
        kind: `files`, `tfds` or `synthetic`.
        name: The TFDS data set (`tfds:<name>`) or generated task (`synthetic:<task>`); "" for `files`.
    """

    kind: str
    name: str = ""


def parse(source: str) -> Source:
    """Splits `data.source` into its kind and name.

    Raises:
        files.DataError: An unknown kind (with the closest kind when one is near), a name after `files`,
            or no name after `tfds:` or `synthetic:`.
    """
    kind, separator, name = source.partition(":")
    named = kind != "files"
    if kind not in KINDS or bool(separator) != named or bool(name) != named:
        raise files.DataError(f"data.source: expected 'files', 'tfds:<name>' or 'synthetic:<task>', got {source!r}."
                              + ("" if kind in KINDS else _did_you_mean(kind)))
    return Source(kind=kind, name=name)


def load_splits(data_config, seed: int, *,
                read_files: typing.Callable[[typing.Any], dict[str, Split]],
                read_tfds: typing.Callable[[str, typing.Any], dict[str, Split]],
                generate: typing.Callable[[int, int, str], Split]) -> dict[str, Split]:
    """Reads the raw splits of `data_config.source` with the loader of its kind.

    Args:
        data_config: A task's data block; `source`, and `synthetic_examples` for synthetic sources.
        seed: The run's seed. Synthetic train is drawn with it, synthetic test with `seed + 1`.
        read_files: `read_files(data_config)` -> {split name: split}, for source `files`.
        read_tfds: `read_tfds(name, data_config)` -> {split name: split}, for source `tfds:<name>`.
        generate: `generate(count, seed, origin)` -> a split of `count` generated examples, for source
            `synthetic:<task>`. Train has `data.synthetic_examples` examples; test a quarter of that, at
            least 10.

    Returns:
        Split name -> split, in the order the loader gives them; never a carved validation split.

    Raises:
        files.DataError: A malformed `data.source` (see `parse`), or whatever the loader raises.
    """
    source = parse(data_config.source)
    if source.kind == "synthetic":
        total = data_config.synthetic_examples
        return {"train": generate(total, seed, f"synthetic:{source.name}/train"),
                "test": generate(max(total // 4, 10), seed + 1, f"synthetic:{source.name}/test")}
    if source.kind == "tfds":
        return read_tfds(source.name, data_config)
    return read_files(data_config)


def split_paths(data_config) -> dict[str, typing.Any]:
    """The paths (or path lists) of the splits the config names, in `train`, `validation`, `test` order.

    Splits whose key (`data.train`, `data.validation`, `data.test`) is null are left out.
    """
    return {split_name: path for split_name in SPLITS if (path := getattr(data_config, split_name)) is not None}


def _did_you_mean(kind: str) -> str:
    matches = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.6)
    return f" Did you mean '{matches[0]}'?" if matches else ""
