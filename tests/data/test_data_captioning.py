"""Caption readers (CSV with RFC 4180 quoting, COCO JSON, split lists, TFDS, synthetic) and the image pass."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from pipeline import config as config_lib
from pipeline.data import captioning
from pipeline.data import files
from pipeline.data import images
from pipeline.data import synthetic_captions


def _write_image(path, colour=(200, 30, 30), size=(40, 30), image_format="JPEG"):
    Image.new("RGB", size, colour).save(path, format=image_format)
    return path


# === CSV ===


def test_csv_captions_keep_quoted_commas_quotes_and_line_breaks(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text('image,caption\n'
                    'a.jpg,A dog runs .\n'
                    'a.jpg,"A dog , brown , runs on the beach ."\n'
                    'b.jpg,"She said ""hello"" , twice"\n'
                    'b.jpg,"two\nlines"\n'
                    '\n'
                    'c.jpg,plain\n', encoding="utf-8")
    result, skipped = captioning.read_captions_csv(str(path))
    assert skipped == 0
    assert result == {"a.jpg": ["A dog runs .", "A dog , brown , runs on the beach ."],
                      "b.jpg": ['She said "hello" , twice', "two\nlines"],
                      "c.jpg": ["plain"]}


def test_malformed_csv_row_names_file_and_line_or_is_skipped_and_counted(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text('image,caption\na.jpg,"multi\nline"\nb.jpg\nc.jpg,\nd.jpg,fine\n', encoding="utf-8")
    with pytest.raises(files.DataError, match=rf"^{path}:4: expected at least 2 fields, found 1"):
        captioning.read_captions_csv(str(path))
    result, skipped = captioning.read_captions_csv(str(path), on_bad_rows="skip")
    assert result == {"a.jpg": ["multi\nline"], "d.jpg": ["fine"]} and skipped == 2


def test_caption_row_with_an_unquoted_comma_is_an_error_or_a_counted_skip(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text('image,caption\na.jpg,A dog runs\nb.jpg,A dog, brown, runs\nc.jpg,"A cat, asleep"\n',
                    encoding="utf-8")
    with pytest.raises(files.DataError, match=rf"^{path}:3: 4 fields, but the header \(line 1\) has 2"):
        captioning.read_captions_csv(str(path))
    result, skipped = captioning.read_captions_csv(str(path), on_bad_rows="skip")
    assert result == {"a.jpg": ["A dog runs"], "c.jpg": ["A cat, asleep"]} and skipped == 1


def test_caption_row_with_invalid_utf8_is_skipped_alone(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_bytes(b"image,caption\na.jpg,one\nb.jpg,bad \xff byte\nc.jpg,three\n" + b"d.jpg,more\n" * 2000)
    with pytest.raises(files.DataError, match=rf"^{path}:3: invalid UTF-8"):
        captioning.read_captions_csv(str(path))
    result, skipped = captioning.read_captions_csv(str(path), on_bad_rows="skip")
    assert skipped == 1 and result["c.jpg"] == ["three"] and len(result["d.jpg"]) == 2000


def test_coco_json_empty_or_null_caption_and_repeated_image_id(tmp_path):
    annotations = {"images": [{"id": 7, "file_name": "x.jpg"}],
                   "annotations": [{"image_id": 7, "caption": "a bird"}, {"image_id": 7, "caption": None},
                                   {"image_id": 7, "caption": "  "}]}
    (tmp_path / "coco.json").write_text(json.dumps(annotations))
    with pytest.raises(files.DataError, match=r"coco.json: annotations\[1\]: the caption is NoneType"):
        captioning.read_coco_json(str(tmp_path / "coco.json"))
    assert captioning.read_coco_json(str(tmp_path / "coco.json"), on_bad_rows="skip") == ({"x.jpg": ["a bird"]}, 2)
    annotations["images"].append({"id": 7, "file_name": "y.jpg"})
    (tmp_path / "twice.json").write_text(json.dumps(annotations))
    with pytest.raises(files.DataError, match=r"twice.json: images\[1\] repeats the id 7 of 'x.jpg'"):
        captioning.read_coco_json(str(tmp_path / "twice.json"))


def test_csv_columns_by_name_or_index_and_unknown_column(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text("id,file,text\n1,a.jpg,a cat\n", encoding="utf-8")
    result, _ = captioning.read_captions_csv(str(path), image_column="file", caption_column=2)
    assert result == {"a.jpg": ["a cat"]}
    with pytest.raises(files.DataError, match=r"captions.csv:1: no column 'image' \(data.image_column\)"):
        captioning.read_captions_csv(str(path))


def test_coco_json_and_split_lists(tmp_path):
    annotations = {"images": [{"id": 7, "file_name": "x.jpg"}, {"id": 8, "file_name": "y.jpg"}],
                   "annotations": [{"image_id": 7, "caption": "a bird, flying"}, {"image_id": 8, "caption": "a boat"},
                                   {"image_id": 7, "caption": "a bird in the sky"}]}
    (tmp_path / "coco.json").write_text(json.dumps(annotations))
    assert captioning.read_coco_json(str(tmp_path / "coco.json")) == (
        {"x.jpg": ["a bird, flying", "a bird in the sky"], "y.jpg": ["a boat"]}, 0)
    annotations["annotations"].append({"image_id": 99, "caption": "lost"})
    (tmp_path / "bad.json").write_text(json.dumps(annotations))
    with pytest.raises(files.DataError, match=r"bad.json: annotations\[3\] refers to unknown image_id 99"):
        captioning.read_coco_json(str(tmp_path / "bad.json"))
    (tmp_path / "broken.json").write_text('{"images": [\n}')
    with pytest.raises(files.DataError, match=r"broken.json:2: invalid JSON"):
        captioning.read_coco_json(str(tmp_path / "broken.json"))


def test_file_splits_from_one_captions_file_and_split_lists(tmp_path):
    (tmp_path / "captions.csv").write_text("image,caption\na.jpg,one\nb.jpg,two\nc.jpg,three\nd.jpg,four\n")
    (tmp_path / "train.txt").write_text("a.jpg\nb.jpg\nnot_in_captions.jpg\n\n")
    (tmp_path / "test.txt").write_text("c.jpg\n")
    config = config_lib.from_tree({"name": "t", "task": "captioning", "data": {
        "source": "files", "captions": str(tmp_path / "captions.csv"), "image_directory": str(tmp_path / "images"),
        "train": str(tmp_path / "train.txt"), "validation": str(tmp_path / "test.txt"),
        "test": str(tmp_path / "test.txt")}})
    splits = captioning.load_splits(config.data, seed=1).splits
    assert splits["train"].images == [str(tmp_path / "images" / "a.jpg"), str(tmp_path / "images" / "b.jpg")]
    assert splits["train"].captions == [["one"], ["two"]] and splits["test"].captions == [["three"]]


# === Images ===


def test_missing_and_corrupt_images_name_their_path(tmp_path):
    good = str(_write_image(tmp_path / "good.jpg"))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    missing = str(tmp_path / "missing.png")
    with pytest.raises(files.DataError, match=rf"^{missing}: image file not found"):
        images.read_images([good, missing], 16)
    with pytest.raises(files.DataError, match=rf"^{corrupt}: not a decodable image"):
        images.read_images([good, str(corrupt)], 16)


def test_skip_policy_drops_bad_images_counts_them_and_keeps_order(tmp_path):
    paths = [str(_write_image(tmp_path / f"{index}.png", (index * 40, 0, 0), image_format="PNG")) for index in range(4)]
    (tmp_path / "1.png").write_bytes(b"garbage")
    paths.insert(2, str(tmp_path / "gone.jpg"))
    batches = []
    checked = images.read_images(paths, 8, on_bad_images="skip", batch_size=2,
                                 consume=lambda rows, pixels: batches.append((rows, pixels)))
    assert checked.kept == [0, 3, 4]
    assert [name for name, _ in checked.skipped] == [paths[1], paths[2]]
    rows = [row for batch_rows, _ in batches for row in batch_rows]
    pixels = np.concatenate([pixels for _, pixels in batches])
    assert rows == [0, 3, 4] and pixels.shape == (3, 8, 8, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[:, 4, 4, 0], [0, 80, 120])


def test_decode_batch_resizes_jpeg_png_and_grayscale_alike():
    def encoded(mode, image_format):
        stream = io.BytesIO()
        Image.new(mode, (50, 20), {"RGB": (128,) * 3, "L": 128, "RGBA": (128,) * 3 + (255,)}[mode]).save(
            stream, format=image_format)
        return stream.getvalue()
    batch = images.decode_batch(tf.constant([encoded("RGB", "JPEG"), encoded("L", "PNG"), encoded("RGBA", "PNG")]), 24)
    assert batch.shape == (3, 24, 24, 3) and batch.dtype == tf.uint8
    assert np.all(np.abs(batch.numpy().astype(int) - 128) <= 2)


# === Synthetic and TFDS ===


def test_synthetic_captions_are_seeded_and_describe_the_image():
    first, second = synthetic_captions.captioning_examples(30, seed=3), synthetic_captions.captioning_examples(30, seed=3)
    assert first == second
    encoded, references = first
    for data, items in zip(encoded, references):
        assert Image.open(io.BytesIO(data)).size == (64, 64)
        words = items[0].split()
        assert words[1] in synthetic_captions.COLOURS and words[2] in synthetic_captions.SHAPES
        assert len(items) == (2 if "of" in words else 1)
    assert len({items[0] for items in references}) > 15  # no caption dominates


def test_tfds_coco_captions_with_mock_data():
    import tensorflow_datasets as tfds

    def jpeg(colour):
        stream = io.BytesIO()
        Image.new("RGB", (20, 16), colour).save(stream, format="JPEG")
        return stream.getvalue()

    def as_dataset(self, split, decoders=None, **kwargs):
        assert isinstance(decoders["image"], tfds.decode.SkipDecoding)  # images stay encoded
        count = {"train": 3, "val": 2, "test": 2}.get(str(split), 1)
        examples = [{"image": jpeg((index * 60, 0, 0)),
                     "captions": {"text": [f"caption {index} of {split}", f"another {index}"]}}
                    for index in range(count)]
        return tf.data.Dataset.from_generator(
            lambda: iter(examples), output_signature={"image": tf.TensorSpec([], tf.string),
                                                      "captions": {"text": tf.TensorSpec([None], tf.string)}})

    config = config_lib.from_tree({"name": "t", "task": "captioning", "data": {"source": "tfds:coco_captions"}})
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        splits = captioning.load_splits(config.data, seed=0).splits
    assert {name: len(split) for name, split in splits.items()} == {"train": 3, "validation": 2, "test": 2}
    assert splits["validation"].captions[1] == ["caption 1 of val", "another 1"]
    assert images.decode_batch(tf.constant(splits["train"].images), 8).shape == (3, 8, 8, 3)
