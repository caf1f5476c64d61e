"""serving/client.py task helpers: which signature and inputs each decoding mode sends (no server needed)."""

import json

import pytest

from serving import client


class RecordingClient(client.Client):
    """Answers every call with one row per input and remembers the requests."""

    def __init__(self):
        super().__init__("model")
        self.requests = []

    def run_signature(self, inputs, signature_name=client.DEFAULT_SIGNATURE):
        self.requests.append((signature_name, inputs))
        count = len(next(iter(inputs.values())))
        return {"text": [f"out{row}" for row in range(count)], "score": [-1.0] * count}


@pytest.mark.parametrize("mode, signature", [("default", "serving_default"), ("greedy", "greedy"), ("beam", "beam")])
def test_generate_sends_prompts_to_the_signature_of_the_mode(mode, signature):
    recording = RecordingClient()

    rows = recording.generate(["a", "b"], mode=mode)

    assert recording.requests == [(signature, {"prompt": ["a", "b"]})]
    assert rows == [{"score": -1.0, "text": "out0"}, {"score": -1.0, "text": "out1"}]


def test_sampling_sends_the_temperature_for_generation_and_translation():
    recording = RecordingClient()

    recording.generate(["a"], mode="sample", temperature=0.5)
    recording.translate(["x"], mode="sample", temperature=2)

    assert recording.requests == [("sample", {"prompt": ["a"], "temperature": 0.5}),
                                  ("sample", {"text": ["x"], "temperature": 2.0})]


def test_an_unknown_mode_is_refused_before_any_request():
    recording = RecordingClient()

    with pytest.raises(ValueError, match="mode must be one of"):
        recording.generate(["a"], mode="nucleus")
    assert recording.requests == []


def test_command_line_generate_passes_mode_and_temperature(monkeypatch, capsys):
    calls = []

    def run_signature(self, inputs, signature_name=client.DEFAULT_SIGNATURE):
        calls.append((self.model, signature_name, inputs))
        return {"text": ["a dog runs"]}

    monkeypatch.setattr(client.RestClient, "run_signature", run_signature)

    assert client.main(["--model", "lm", "generate", "--mode", "sample", "--temperature", "0.8", "a dog"]) == 0
    assert calls == [("lm", "sample", {"prompt": ["a dog"], "temperature": 0.8})]
    assert json.loads(capsys.readouterr().out) == {"input": "a dog", "text": "a dog runs"}


def test_host_header_reaches_the_server_for_ingress_routing(monkeypatch, capsys):
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's method name
            seen.append(self.headers["Host"])
            body = json.dumps({"model_version_status": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *arguments):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        client.RestClient(url, "m", host_header="m.default.example.com").status()
        assert client.main(["--url", url, "--host-header", "cli.example.com", "--model", "m", "status"]) == 0
    finally:
        server.shutdown()

    assert seen == ["m.default.example.com", "cli.example.com"]
