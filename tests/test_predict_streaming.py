"""`predict`: inputs read and answered as they arrive, one error row per bad input, no traceback.

The exports here are small hand-written SavedModels (no training): one takes texts, one takes image bytes
and decodes them in the graph as the captioning export does, so that a file that is not an image fails
inside TensorFlow.
"""

import io
import json
import os
import re
import select
import subprocess
import sys

import pytest
import tensorflow as tf
from PIL import Image

import helpers
from pipeline import predict

_NATIVE_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} )")


class _TextModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return {"label": tf.strings.upper(text), "score": tf.cast(tf.strings.length(text), tf.float32)}


class _ImageModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(self, image_bytes):
        def size(item):
            image = tf.io.decode_image(item, channels=3, expand_animations=False)
            return tf.strings.format("{}x{}", (tf.shape(image)[0], tf.shape(image)[1]))
        return {"caption": tf.map_fn(size, image_bytes, fn_output_signature=tf.string)}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    directory = tmp_path_factory.mktemp("exports")
    paths = {}
    for name, module in (("text", _TextModel()), ("image", _ImageModel())):
        paths[name] = str(directory / name / "1")
        tf.saved_model.save(module, paths[name], signatures={"serving_default": module.serve})
    return paths


@pytest.fixture()
def image_files(tmp_path):
    """Two good images, a text file named like a JPEG, an empty file and a missing path."""
    good = [str(tmp_path / "red.png"), str(tmp_path / "blue.jpg")]
    Image.new("RGB", (8, 6), (200, 0, 0)).save(good[0], format="PNG")
    Image.new("RGB", (5, 4), (0, 0, 200)).save(good[1], format="JPEG")
    (tmp_path / "fake.jpg").write_text("not an image\n")
    (tmp_path / "empty.jpg").write_bytes(b"")
    return {"good": good, "fake": str(tmp_path / "fake.jpg"), "empty": str(tmp_path / "empty.jpg"),
            "missing": str(tmp_path / "missing.jpg")}


class _Trickle:
    """A binary stream that hands out its chunks one read at a time and counts the reads."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.reads = 0

    def read1(self, size):
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""


# === Reading ===


def test_each_line_is_handed_on_before_more_input_is_read():
    stream = _Trickle([b"first\n", b"second\nthird\n"])
    batches = predict.line_batches(stream, batch_size=64)

    assert [item.given for item in next(batches)] == ["first"]
    assert stream.reads == 1  # answered before waiting for the second line
    assert [item.given for item in next(batches)] == ["second", "third"]


def test_piped_lines_fill_batches_of_batch_size():
    stream = _Trickle([b"a\nb\nc\r\nd\ne"])

    batches = [[item.given for item in batch] for batch in predict.line_batches(stream, batch_size=2)]

    assert batches == [["a", "b"], ["c", "d"], ["e"]]


def test_invalid_utf8_line_names_its_line_number():
    batches = list(predict.line_batches(io.BytesIO(b"fine\nbad \xff here\nalso fine\n"), batch_size=8))

    items = [item for batch in batches for item in batch]
    assert [item.error for item in items] == [None, "stdin line 2: invalid UTF-8 (byte 0xff at byte 5 of the line)",
                                              None]
    assert items[1].given == "bad \ufffd here"


# === Answering ===


def test_bad_text_lines_get_error_rows_and_the_others_are_answered(exports):
    rows = list(predict.predict_lines(exports["text"], io.BytesIO(b"one\n\xfe\ntwo\n"), batch_size=2))

    assert rows[0] == {"text": "one", "label": "ONE", "score": 3.0}
    assert rows[1] == {"input": "\ufffd", "error": "stdin line 2: invalid UTF-8 (byte 0xfe at byte 1 of the line)"}
    assert rows[2]["label"] == "TWO"


def test_bad_image_files_get_error_rows_and_the_good_ones_are_captioned(exports, image_files):
    inputs = [image_files["good"][0], image_files["fake"], image_files["empty"], image_files["missing"],
              image_files["good"][1]]

    rows = list(predict.predict(exports["image"], inputs, batch_size=8))

    assert rows[0] == {"image": image_files["good"][0], "caption": "6x8"}
    assert rows[4] == {"image": image_files["good"][1], "caption": "4x5"}
    errors = {row["input"]: row["error"] for row in rows[1:4]}
    assert list(errors) == inputs[1:4]
    assert errors[image_files["fake"]].startswith(f"{image_files['fake']}: the model cannot read this file: "
                                                  "Unknown image file format")
    assert "[[" not in errors[image_files["fake"]] and "\n" not in errors[image_files["fake"]]
    assert errors[image_files["empty"]].endswith("the file is empty")
    assert "cannot read this input file" in errors[image_files["missing"]]


# === Command line ===


def _read_line(stream, timeout: float = 120.0) -> str:
    """One line of a child's output; the timeout only guards against a hang."""
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no answer while stdin stays open: predict does not stream"
    return stream.readline()


@pytest.mark.skipif(sys.platform == "win32", reason="select on pipes")
def test_cli_answers_a_stdin_line_before_stdin_ends_and_fails_for_a_bad_line(exports):
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "predict", exports["text"]], cwd=helpers.REPOSITORY,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, PIPELINE_DEBUG=""))
    try:
        process.stdin.write(b"hello\n")
        process.stdin.flush()
        assert json.loads(_read_line(process.stdout))["label"] == "HELLO"
        process.stdin.write(b"caf\xe9\nlast\n")
        process.stdin.close()
        rest = [json.loads(line) for line in process.stdout.read().splitlines()]
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=120) == 1
    finally:
        process.kill()
    assert rest == [{"input": "caf\ufffd", "error": "stdin line 2: invalid UTF-8 (byte 0xe9 at byte 4 of the line)"},
                    {"text": "last", "label": "LAST", "score": 4.0}]
    assert "Traceback" not in stderr and "1 of 3 inputs failed" in stderr


def test_cli_bad_images_give_error_rows_a_failing_status_and_no_traceback(exports, image_files):
    process = helpers.run_cli("predict", exports["image"], image_files["fake"], image_files["good"][0],
                              image_files["missing"], timeout=300)

    assert process.returncode == 1
    rows = [json.loads(line) for line in process.stdout.splitlines()]
    assert [("error" in row) for row in rows] == [True, False, True]
    assert rows[1]["caption"] == "6x8"
    assert "Traceback" not in process.stderr
    assert [line for line in process.stderr.splitlines() if line.strip()] == [
        "error: 2 of 3 inputs failed; their rows say why"]


def test_cli_prints_no_native_tensorflow_logging(exports):
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_CPP_MIN_LOG_LEVEL", "PIPELINE_DEBUG")}
    quiet = subprocess.run([sys.executable, "-m", "pipeline", "predict", exports["text"], "hi"], cwd=helpers.REPOSITORY,
                           capture_output=True, text=True, env=environment, timeout=300)

    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if _NATIVE_LOG_LINE.match(line)], quiet.stderr
    assert [json.loads(line) for line in quiet.stdout.splitlines()] == [{"text": "hi", "label": "HI", "score": 2.0}]
