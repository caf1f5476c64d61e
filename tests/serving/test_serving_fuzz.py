"""Fuzz: thousands of malformed REST requests, each answered by a JSON error with a 4xx status; the server lives."""

import json
import random
import string

import pytest

REQUESTS = 3000
SEED = 20240601

MODELS = ("half_plus_two", "half_plus_three", "echo", "image_size")  # half_precision answers 501 by design
VERBS = ("predict", "classify", "regress")
JUNK_VALUES = [None, True, False, "text", "", {}, {"b64": "@@@"}, {"b64": 3}, [1, [2]], {"x": {"y": {}}},
               "\ud800", "\x00", [None], [{"b64": "QQ"}, 1]]


def _random_text(rng: random.Random, size: int) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.~%/:?#[]@!$&'()*+,;= \t\u00e9\u4e2d"
    return "".join(rng.choice(alphabet) for _ in range(size))


def _bad_path(rng: random.Random) -> tuple[str, str]:
    """A method and path that name no servable or no API (unknown models are 6+ random characters)."""
    unknown = "zz" + "".join(rng.choice(string.ascii_lowercase) for _ in range(6))
    choices = [
        ("GET", f"/v1/models/{unknown}"),
        ("GET", f"/v1/models/{unknown}/metadata"),
        ("GET", f"/v1/models/{rng.choice(MODELS)}/versions/{rng.randint(2, 10 ** 30)}"),
        ("GET", f"/v1/models/{rng.choice(MODELS)}/labels/{unknown}/metadata"),
        ("GET", "/v1/" + _random_text(rng, rng.randint(0, 40)).replace("?", "").replace("#", "")),
        ("GET", "/" + unknown + "/" + _random_text(rng, 10).replace("?", "").replace("#", "")),
        (rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS"]), f"/v1/models/{rng.choice(MODELS)}"),
        (rng.choice(["PUT", "DELETE", "PATCH", "GET"]), f"/v1/models/{rng.choice(MODELS)}:{rng.choice(VERBS)}"),
        ("POST", f"/v1/models/{unknown}:{rng.choice(VERBS)}"),
        ("POST", f"/v1/models/{rng.choice(MODELS)}:{unknown}"),
        ("POST", f"/v1/models/{rng.choice(MODELS)}/versions/{rng.randint(2, 99)}:predict"),
        ("POST", f"/v1/models/{rng.choice(MODELS)}/labels/{unknown}:predict"),
        ("POST", f"/v1/models/%{rng.choice('GZ')}{rng.choice('GZ')}:predict"),
    ]
    return rng.choice(choices)


def _bad_predict_document(rng: random.Random):
    """A parsed JSON document that no model here accepts for predict."""
    junk = rng.choice(JUNK_VALUES)
    choices = [
        {"instances": [junk]}, {"inputs": [junk]}, {"instances": junk if not isinstance(junk, list) else 1},
        {"instances": [1.0], "inputs": [1.0]}, {"signature_name": "serving_default"}, {},
        {"signature_name": rng.choice([1, None, [], {}, True])}, {"signature_name": _random_text(rng, 8) + "!"},
        {"instances": []}, {"inputs": {"text": [junk]}}, {"instances": [{"text": junk, "count": "x"}]},
        {"instances": [[rng.random()] * rng.randint(1, 3), [rng.random()] * 4]},
        {"inputs": [[rng.random()], [[rng.random()]]]}, {"instances": [{"nope": 1.0}]},
        {"inputs": {"nope": [1.0]}, "x": 1},
        [junk], junk, "instances",
    ]
    return rng.choice(choices)


def _bad_example_document(rng: random.Random):
    junk = rng.choice([None, [], [[1.0]], {"a": 1}, [1.0, "a"], [1, 2.5, "x"], 2 ** 64])
    choices = [{"examples": [{"x": junk}]}, {"examples": []}, {"examples": junk}, {"context": junk, "examples": [{}]},
               {"signature_name": "regress_x_to_y"}, {"examples": [junk, 1]}, {"signature_name": 7, "examples": [{}]}]
    return rng.choice(choices)


def _bad_body(rng: random.Random, verb: str) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if kind == 1:  # a valid document cut short
        text = json.dumps({"instances": [rng.random() for _ in range(rng.randint(1, 5))]})
        return text[:rng.randint(0, len(text) - 1)].encode()
    if kind == 2:
        depth = rng.randint(500, 20000)
        return ('{"instances": ' + "[" * depth + "1.0" + "]" * depth + "}").encode()
    document = _bad_predict_document(rng) if verb == "predict" else _bad_example_document(rng)
    return json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass")


def malformed_requests(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        if rng.random() < 0.3:
            method, path = _bad_path(rng)
            yield method, path, _bad_body(rng, "predict") if rng.random() < 0.5 else None
        else:
            verb = rng.choice(VERBS)
            model = rng.choice(MODELS)
            if verb != "predict" and model in ("half_plus_two", "half_plus_three") and rng.random() < 0.5:
                verb = "predict"  # their classify/regress signatures need a signature_name: keep cases invalid
            yield "POST", f"/v1/models/{model}:{verb}", _bad_body(rng, verb)


@pytest.mark.parametrize("seed", [SEED])
def test_malformed_requests_get_json_4xx_errors_and_the_server_stays_up(conformance_server, seed):
    statuses = {}
    for method, path, body in malformed_requests(REQUESTS, seed):
        response = conformance_server.request(method, path, body)
        assert 400 <= response.status_code < 500, (method, path, body[:200] if body else body, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        error = json.loads(response.text)
        assert isinstance(error, dict) and isinstance(error.get("error"), str) and error["error"], error
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    assert set(statuses) >= {400, 404}, statuses
    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0]})
    assert (response.status_code, json.loads(response.text)) == (200, {"predictions": [2.5]})
