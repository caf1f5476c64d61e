"""A server over TF Serving's own test models and a few hand-made TF2 models, started once per session."""

import pytest

import serving_helpers
from serving import model_config


@pytest.fixture(scope="session")
def handmade_models(tmp_path_factory) -> dict:
    """Base paths of the hand-made models (version 1 each)."""
    directory = tmp_path_factory.mktemp("handmade_models")
    writers = {"image_size": serving_helpers.write_image_size_model, "echo": serving_helpers.write_echo_model,
               "half_precision": serving_helpers.write_half_precision_model}
    paths = {}
    for name, writer in writers.items():
        writer(str(directory / name / "1"))
        paths[name] = str(directory / name)
    return paths


@pytest.fixture(scope="session")
def conformance_server(handmade_models):
    """TF Serving's test models (as its own tests name them) plus the hand-made ones, REST and gRPC."""
    if not serving_helpers.TESTDATA.is_dir():
        pytest.skip(f"{serving_helpers.TESTDATA} is absent")
    testdata = serving_helpers.TESTDATA
    configs = [
        model_config.ModelConfig("half_plus_two", str(testdata / "saved_model_half_plus_two_2_versions"),
                                 policy="all", labels={"stable": 123, "canary": 124}),
        model_config.ModelConfig("half_plus_three", str(testdata / "saved_model_half_plus_three")),
        model_config.ModelConfig("default", str(testdata / "saved_model_half_plus_two_cpu")),
        *(model_config.ModelConfig(name, path) for name, path in handmade_models.items()),
    ]
    running = serving_helpers.start_server(configs, num_threads=4, max_request_bytes=serving_helpers.MAX_REQUEST_BYTES)
    yield running
    running.server.stop_thread()
    running.server.manager.stop()
