"""Serving tests: a started server with its addresses, and small hand-made TF2 SavedModels."""

import json
import os
import time

import requests
import tensorflow as tf

import helpers
from serving import model_manager
from serving import servable as servable_lib
from serving import server as server_lib

TESTDATA = helpers.SHARED_DATA / "tf_serving_testdata"
MAX_REQUEST_BYTES = 1 << 20


class RunningServer:
    """A started ModelServer with its REST base URL, gRPC target and an HTTP session."""

    def __init__(self, server: server_lib.ModelServer):
        self.server = server
        self.url = f"http://127.0.0.1:{server.rest_port}"
        self.grpc_target = f"127.0.0.1:{server.grpc_port}"
        self.session = requests.Session()

    def request(self, method: str, path: str, body=None) -> requests.Response:
        data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
        return self.session.request(method, self.url + path, data=data, timeout=60)


def start_server(configs: list, loader=None, policy=None, **options) -> RunningServer:
    manager = model_manager.ModelManager(configs, loader or servable_lib.Servable,
                                         policy or model_manager.LoadPolicy())
    manager.poll()
    manager.apply_labels()
    return RunningServer(server_lib.ModelServer(manager, **options).start_in_thread())


def _save(module: tf.Module, path: str, signatures: dict) -> str:
    tf.saved_model.save(module, path, signatures=signatures)
    return path


def write_image_size_model(path: str) -> str:
    """`image_bytes` (JPEG/PNG) -> `caption` "WIDTHxHEIGHT" and `score` (pixel count), like a captioner."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes):
        sizes = tf.map_fn(lambda data: tf.shape(tf.io.decode_image(data, channels=3, expand_animations=False))[:2],
                          image_bytes, fn_output_signature=tf.int32)  # (batch, 2): height, width
        caption = tf.strings.join([tf.strings.as_string(sizes[:, 1]), tf.strings.as_string(sizes[:, 0])], "x")
        return {"caption": caption, "score": tf.cast(sizes[:, 0] * sizes[:, 1], tf.float32)}

    module.serve = serve
    return _save(module, path, {"serving_default": serve})


def write_echo_model(path: str) -> str:
    """Two inputs (`text` string, `count` int32) -> `echo_bytes` (the text, b64 in REST) and `doubled`."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([None], tf.int32, name="count")])
    def serve(text, count):
        return {"echo_bytes": text, "doubled": count * 2}

    module.serve = serve
    return _save(module, path, {"serving_default": serve})


def write_half_precision_model(path: str) -> str:
    """A float16 input, which TF Serving's JSON conversion does not support (501)."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float16, name="x")])
    def serve(x):
        return {"y": x * 2}

    module.serve = serve
    return _save(module, path, {"serving_default": serve})


def write_scale_model(path: str, factor: float) -> str:
    """`x` float [batch] -> `y` = x * factor: successive versions answer differently."""
    module = tf.Module()
    module.factor = tf.Variable(factor, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(x):
        return {"y": x * module.factor}

    module.serve = serve
    return _save(module, path, {"serving_default": serve})


def write_mean_model(path: str) -> str:
    """`x` float [batch, width] -> `y` = the mean of each row: big inputs, small outputs."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def serve(x):
        return {"y": tf.reduce_mean(x, axis=1)}

    module.serve = serve
    return _save(module, path, {"serving_default": serve})


class SlowServable(servable_lib.Servable):
    """A servable whose runs first sleep `delay_seconds` (a stand-in for a slow model)."""

    delay_seconds = 1.0

    def run(self, *arguments, **keywords):
        time.sleep(self.delay_seconds)
        return super().run(*arguments, **keywords)


def copy_file_by_file(source: str, destination: str, pause_seconds: float) -> None:
    """Copies a SavedModel folder as a slow copy would: saved_model.pb first, the rest after a pause."""
    import shutil
    os.makedirs(destination)
    shutil.copy2(os.path.join(source, "saved_model.pb"), destination)
    time.sleep(pause_seconds)
    for name in sorted(os.listdir(source)):
        if name != "saved_model.pb":
            copy = shutil.copytree if os.path.isdir(os.path.join(source, name)) else shutil.copy2
            copy(os.path.join(source, name), os.path.join(destination, name))


def write_atomically(writer, base_path: str, version: int, *arguments) -> str:
    """Writes a version into a hidden folder, then renames it into place (as `pipeline export` does)."""
    temporary = os.path.join(base_path, f".tmp-{version}")
    writer(temporary, *arguments)
    final = os.path.join(base_path, str(version))
    os.rename(temporary, final)
    return final
