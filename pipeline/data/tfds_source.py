"""TensorFlow Datasets sources shared by every task: a prepared builder and its splits as NumPy examples."""

import typing

from pipeline.data import files


def prepared_builder(name: str, data_dir: typing.Optional[str]):
    """Returns the TFDS builder for `name`, downloading and preparing the data on first use.

    Raises:
        files.DataError: Unknown data set, or the download/preparation failed (e.g. no internet).
    """
    import tensorflow_datasets as tfds  # Imported lazily: slow, and only needed for TFDS sources.

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # TFDS raises several types for unknown names and configs
        raise files.DataError(f"tfds:{name}: not a TFDS data set ({_first_line(error)})") from error
    try:
        builder.download_and_prepare()
    except Exception as error:  # network, checksum and disk errors all end the same way for the user
        raise files.DataError(
            f"tfds:{name}: could not download or prepare the data ({type(error).__name__}: {_first_line(error)}); "
            "TFDS needs internet on first use, or set data.tfds_data_dir to a folder with the prepared data, "
            "or use the files source") from error
    return builder


def split_examples(builder, split_names: typing.Iterable[str],
                   decoders: typing.Optional[dict] = None) -> typing.Iterator[tuple[str, typing.Iterable[dict]]]:
    """Yields (split name, NumPy examples) for each requested split the data set has.

    Args:
        builder: A prepared builder.
        split_names: TFDS split names to read.
        decoders: Optional TFDS decoders per feature, e.g. `{"image": tfds.decode.SkipDecoding()}`.
    """
    import tensorflow_datasets as tfds

    for split_name in split_names:
        # Without metadata (e.g. under tfds.testing.mock_data) every requested split is tried.
        if builder.info.splits and split_name not in builder.info.splits:
            continue
        yield split_name, tfds.as_numpy(builder.as_dataset(split=split_name, decoders=decoders))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]
