"""docs/configuration.md is generated from the config classes and kept in step with them."""

import dataclasses

import helpers
from pipeline.config import common, reference, schemas

REFERENCE_FILE = helpers.REPOSITORY / "docs" / "configuration.md"


def test_the_committed_reference_is_current():
    committed = REFERENCE_FILE.read_text(encoding="utf-8")

    assert committed == reference.render(), (
        "docs/configuration.md is stale: run `python -m pipeline.config.reference > docs/configuration.md`")


def _blocks():
    seen = [common.RunConfig, common.TrainConfig, common.ExportConfig, common.RuntimeConfig]
    for schema in schemas.SCHEMAS.values():
        seen += [schema.data, schema.model, schema.train]
    for block in list(seen):
        seen += [field.type for field in dataclasses.fields(block) if dataclasses.is_dataclass(field.type)]
    return list(dict.fromkeys(seen))


def test_every_key_of_every_block_is_described():
    undescribed = [f"{block.__name__}.{field.name}" for block in _blocks()
                   for field in dataclasses.fields(block)
                   if not reference.attribute_descriptions(block).get(field.name)]

    assert not undescribed


def test_every_key_appears_with_its_bounds_and_default():
    text = reference.render()

    assert "| `train.epochs` | int, >= 1 | `5` |" in text
    assert "| `model.encoder.image_size` | int or null, >= 32 | `null` |" in text
    assert "| `runtime.tpu_address` | str | `\"\"` |" in text


def test_attributes_sections_with_continuation_lines_are_read():
    class Block:
        """Summary.

        Attributes:
            first: One line.
            second: Two
                lines.

        Returns nothing.
        """

    assert reference.attribute_descriptions(Block) == {"first": "One line.", "second": "Two lines."}
