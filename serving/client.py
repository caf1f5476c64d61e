"""Client for TensorFlow Serving and `serving/server.py`: REST or gRPC, with helpers for this project's tasks.

A single file you can copy: REST needs only `requests`; gRPC needs `tensorflow-serving-api` (which brings
TensorFlow). It speaks TF Serving's own API, so it works unchanged against the official server.

    python serving/client.py --model sentiment classify "the plot was not good" "a fine film"
    python serving/client.py --model tagging tag "we book the old train"
    python serving/client.py --grpc localhost:8500 --model translation translate --mode beam "one of may"
    python serving/client.py --model captioning caption photo.jpg
    python serving/client.py --model lm_char generate --mode sample --temperature 0.8 "a dog "
    python serving/client.py --model sentiment status
    python serving/client.py --url http://INGRESS --host-header sentiment.default.example.com --model sentiment status
    echo "reads one input per line" | python serving/client.py --model sentiment classify

From Python:

    client = RestClient("http://localhost:8501", "sentiment")   # or GrpcClient("localhost:8500", "sentiment")
    client.classify(["the plot was not good"])  # [{"label": "negative", "score": 0.97, "probabilities": [...]}]
"""

import argparse
import base64
import json
import sys
import typing
import urllib.parse

import requests

DEFAULT_SIGNATURE = "serving_default"
DECODING_MODES = ("default", "greedy", "beam", "sample")  # signatures of translation and language models


class ServingError(RuntimeError):
    """The server answered with an error: `status` is the HTTP status or the gRPC code name."""

    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Client:
    """Task helpers over one model; subclasses run a signature on columns of inputs (`run_signature`)."""

    def __init__(self, model: str, timeout: float = 30.0):
        self.model = model
        self.timeout = timeout

    def run_signature(self, inputs: dict, signature_name: str = DEFAULT_SIGNATURE) -> dict:
        """Runs a signature on a batch: `inputs` maps input names to lists (or scalars); returns output lists."""
        raise NotImplementedError

    def rows(self, inputs: dict, signature_name: str = DEFAULT_SIGNATURE) -> list[dict]:
        """`run_signature`, turned into one dict of outputs per example."""
        outputs = self.run_signature(inputs, signature_name)
        return [{name: values[row] for name, values in sorted(outputs.items())}
                for row in range(len(next(iter(outputs.values()))))]

    def classify(self, texts: list[str]) -> list[dict]:
        """Sentiment: `{"label", "score", "probabilities"}` per text."""
        return self.rows({"text": list(texts)})

    def tag(self, texts: list[str]) -> list[dict]:
        """Tagging: `{"tokens", "tags"}` per whitespace-tokenized sentence, without the padding."""
        rows = self.rows({"text": list(texts)})
        return [{"tokens": row["tokens"][:row["length"]], "tags": row["tags"][:row["length"]]} for row in rows]

    def translate(self, texts: list[str], mode: str = "default", temperature: float = 1.0) -> list[dict]:
        """Translation: `{"translation", "score"}` per text; `mode` picks the decoding signature."""
        return self._decode("text", texts, mode, temperature)

    def _decode(self, input_name: str, texts: list[str], mode: str, temperature: float) -> list[dict]:
        """Runs the decoding signature `mode` names (`sample` also takes the temperature)."""
        if mode not in DECODING_MODES:
            raise ValueError(f"mode must be one of {DECODING_MODES} (got {mode!r})")
        inputs = {input_name: list(texts)}
        if mode == "sample":
            inputs["temperature"] = float(temperature)
        return self.rows(inputs, DEFAULT_SIGNATURE if mode == "default" else mode)

    def caption(self, image_paths: list[str]) -> list[dict]:
        """Captioning: `{"caption", "score"}` per JPEG/PNG file (sent as bytes)."""
        images = []
        for path in image_paths:
            with open(path, "rb") as stream:
                images.append(stream.read())
        return self.rows({"image_bytes": images})

    def generate(self, prompts: list[str], mode: str = "default", temperature: float = 1.0) -> list[dict]:
        """Language model: `{"text", "continuation", "score"}` per prompt; `mode` picks the decoding signature."""
        return self._decode("prompt", prompts, mode, temperature)


class RestClient(Client):
    """TF Serving's REST API (`/v1/models/...`).

    Args:
        url: Server address, e.g. `http://localhost:8501`.
        model: Model name.
        version: Version number to ask for (default: the latest).
        label: Version label to ask for (instead of a number).
        timeout: Seconds per request.
        host_header: `Host` header to send (a Knative/Istio ingress routes on it), instead of the URL's host.
    """

    def __init__(self, url: str, model: str, version: typing.Optional[int] = None,
                 label: typing.Optional[str] = None, timeout: float = 30.0,
                 host_header: typing.Optional[str] = None):
        super().__init__(model, timeout)
        self.url = url.rstrip("/")
        self._headers = {"Content-Type": "application/json", **({"Host": host_header} if host_header else {})}
        self.model_path = f"{self.url}/v1/models/{urllib.parse.quote(model, safe='')}"
        if version is not None:
            self.model_path += f"/versions/{int(version)}"
        elif label is not None:
            self.model_path += f"/labels/{urllib.parse.quote(label, safe='')}"
        self._session = requests.Session()
        self._output_names = {}

    def _call(self, method: str, url: str, document=None) -> dict:
        body = None if document is None else json.dumps(document).encode("utf-8")
        response = self._session.request(method, url, data=body, timeout=self.timeout, headers=self._headers)
        try:
            answer = response.json()
        except ValueError:
            raise ServingError(response.status_code, response.text[:500]) from None
        if response.status_code != 200:
            raise ServingError(response.status_code, answer.get("error", response.text[:500])
                               if isinstance(answer, dict) else response.text[:500])
        return answer

    def status(self) -> dict:
        return self._call("GET", self.model_path)

    def metadata(self) -> dict:
        return self._call("GET", f"{self.model_path}/metadata")

    def predict(self, document: dict) -> dict:
        """POSTs a predict request as is (`{"instances": ...}` or `{"inputs": ...}`) and returns the answer."""
        return self._call("POST", f"{self.model_path}:predict", document)

    def classify_examples(self, examples: list[dict], signature_name: typing.Optional[str] = None,
                          context: typing.Optional[dict] = None) -> list:
        return self._example_request("classify", examples, signature_name, context)

    def regress_examples(self, examples: list[dict], signature_name: typing.Optional[str] = None,
                         context: typing.Optional[dict] = None) -> list:
        return self._example_request("regress", examples, signature_name, context)

    def _example_request(self, method: str, examples, signature_name, context) -> list:
        document = {"examples": examples}
        if signature_name:
            document["signature_name"] = signature_name
        if context is not None:
            document["context"] = context
        return self._call("POST", f"{self.model_path}:{method}", document)["results"]

    def output_names(self, signature_name: str) -> list[str]:
        """The signature's output names, from the model's metadata (asked once)."""
        if signature_name not in self._output_names:
            signatures = self.metadata()["metadata"]["signature_def"]["signature_def"]
            if signature_name not in signatures:
                raise ServingError(400, f"the model has no signature {signature_name!r}; it has {sorted(signatures)}")
            self._output_names[signature_name] = sorted(signatures[signature_name]["outputs"])
        return self._output_names[signature_name]

    def run_signature(self, inputs: dict, signature_name: str = DEFAULT_SIGNATURE) -> dict:
        columns = {name: _json_column(values) for name, values in inputs.items()}
        document = {"signature_name": signature_name, "inputs": columns}
        outputs = self.predict(document)["outputs"]
        names = self.output_names(signature_name)
        outputs = outputs if len(names) > 1 else {names[0]: outputs}
        return {name: _plain_column(values) for name, values in outputs.items()}


def _json_column(values):
    """Bytes become `{"b64": ...}` (TF Serving's binary strings); other values pass as they are."""
    if isinstance(values, (bytes, bytearray)):
        return {"b64": base64.b64encode(values).decode("ascii")}
    if isinstance(values, (list, tuple)):
        return [_json_column(value) for value in values]
    return values


def _plain_column(values):
    if isinstance(values, dict) and set(values) == {"b64"}:
        return base64.b64decode(values["b64"])
    if isinstance(values, list):
        return [_plain_column(value) for value in values]
    return values


class GrpcClient(Client):
    """TF Serving's gRPC `PredictionService` and `ModelService` (official `tensorflow-serving-api` stubs).

    Args:
        target: `host:port`, e.g. `localhost:8500`.
        model: Model name.
        version: Version number to ask for (default: the latest).
        label: Version label to ask for (instead of a number).
        timeout: Seconds per call.
        max_message_bytes: Largest message sent or received.
        host_header: The `:authority` (HTTP/2's Host) to send, for an ingress that routes on it.
    """

    def __init__(self, target: str, model: str, version: typing.Optional[int] = None,
                 label: typing.Optional[str] = None, timeout: float = 30.0, max_message_bytes: int = 64 << 20,
                 host_header: typing.Optional[str] = None):
        super().__init__(model, timeout)
        import grpc  # imported here: REST users need neither grpc nor TensorFlow
        from tensorflow_serving.apis import model_service_pb2_grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if host_header:
            options.append(("grpc.default_authority", host_header))
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target, options=options)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self.version = version
        self.label = label
        self._signatures = None

    def _spec(self, model_spec, signature_name: str = "") -> None:
        model_spec.name = self.model
        if signature_name:
            model_spec.signature_name = signature_name
        if self.version is not None:
            model_spec.version.value = int(self.version)
        elif self.label is not None:
            model_spec.version_label = self.label

    def _invoke(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as error:
            raise ServingError(error.code().name, error.details()) from None

    def status(self) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._invoke(self._models.GetModelStatus, request)
        return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)

    def signatures(self) -> dict:
        """Signature name -> SignatureDef, from GetModelMetadata (asked once)."""
        if self._signatures is None:
            from tensorflow_serving.apis import get_model_metadata_pb2
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            self._spec(request.model_spec)
            response = self._invoke(self._prediction.GetModelMetadata, request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            self._signatures = dict(signature_map.signature_def)
        return self._signatures

    def metadata(self) -> dict:
        from google.protobuf import json_format
        return {name: json_format.MessageToDict(signature, preserving_proto_field_name=True)
                for name, signature in self.signatures().items()}

    def predict_tensors(self, inputs: dict, signature_name: str = DEFAULT_SIGNATURE,
                        output_filter: typing.Sequence[str] = ()) -> dict:
        """Predict with NumPy-convertible inputs (cast to the signature's dtypes); returns NumPy arrays."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
        signature = self.signatures().get(signature_name)
        if signature is None:
            raise ServingError("INVALID_ARGUMENT", f"the model has no signature {signature_name!r}; "
                                                   f"it has {sorted(self.signatures())}")
        request = predict_pb2.PredictRequest(output_filter=list(output_filter))
        self._spec(request.model_spec, signature_name)
        for name, value in inputs.items():
            dtype = tf.dtypes.as_dtype(signature.inputs[name].dtype) if name in signature.inputs else None
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
        response = self._invoke(self._prediction.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def run_signature(self, inputs: dict, signature_name: str = DEFAULT_SIGNATURE) -> dict:
        outputs = self.predict_tensors(inputs, signature_name)
        return {name: _from_array(array, keep_bytes=name.endswith("_bytes")) for name, array in outputs.items()}


def _from_array(array, keep_bytes: bool = False):
    """A NumPy output as plain Python lists, strings decoded (bytes kept for `*_bytes` outputs, as REST does)."""
    if array.dtype.kind not in "OS":
        return array.tolist()

    def walk(value):
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value if keep_bytes else value.decode("utf-8", "replace")
    return walk(array.tolist())


# === Command line ===

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serving/client.py", description=__doc__.splitlines()[0])
    address = parser.add_mutually_exclusive_group()
    address.add_argument("--url", default="http://localhost:8501", help="REST address (default http://localhost:8501)")
    address.add_argument("--grpc", metavar="HOST:PORT", help="use gRPC at this address instead of REST")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--version", type=int, help="model version (default: latest)")
    parser.add_argument("--label", help="model version label")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    parser.add_argument("--host-header", help="Host header (gRPC: authority) to send, e.g. the Knative service "
                        "host name when --url is an ingress address")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="version states of the model")
    commands.add_parser("metadata", help="the model's signatures")
    for name, what in (("classify", "texts"), ("tag", "sentences"), ("caption", "image files")):
        command = commands.add_parser(name, help=f"run the {name} helper on {what} (stdin lines when none given)")
        command.add_argument("inputs", nargs="*", metavar="INPUT")
    for name, what in (("translate", "translate texts"), ("generate", "continue prompts")):
        command = commands.add_parser(name, help=f"{what} (stdin lines when none given)")
        command.add_argument("inputs", nargs="*", metavar="INPUT")
        command.add_argument("--mode", choices=DECODING_MODES, default="default", help="decoding signature")
        command.add_argument("--temperature", type=float, default=1.0, help="for --mode sample")
    return parser


def main(argv: typing.Optional[list[str]] = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.grpc:
        client = GrpcClient(arguments.grpc, arguments.model, arguments.version, arguments.label, arguments.timeout,
                            host_header=arguments.host_header)
    else:
        client = RestClient(arguments.url, arguments.model, arguments.version, arguments.label, arguments.timeout,
                            host_header=arguments.host_header)
    try:
        if arguments.command in ("status", "metadata"):
            print(json.dumps(getattr(client, arguments.command)(), indent=2, ensure_ascii=False))
            return 0
        inputs = arguments.inputs or [line.rstrip("\n") for line in sys.stdin]
        if arguments.command in ("translate", "generate"):
            results = getattr(client, arguments.command)(inputs, arguments.mode, arguments.temperature)
        else:
            results = getattr(client, arguments.command)(inputs)
    except (ServingError, OSError, requests.RequestException) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for text, result in zip(inputs, results):
        print(json.dumps({"input": text, **result}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
