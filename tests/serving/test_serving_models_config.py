"""models.config parsing, version policies, labels, polling and unloading (with a stand-in loader)."""

import os

import pytest

import helpers
from pipeline import cli
from serving import model_config
from serving import model_manager
from serving import status

CONFIG = """
model_config_list {
  config { name: "sentiment" base_path: "exports/sentiment" model_platform: "tensorflow" }
  config {
    name: "tagging"
    base_path: "/models/tagging"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
  config { name: "translation" base_path: "/t" model_version_policy { latest { num_versions: 2 } } }
  config { name: "everything" base_path: "/e" model_version_policy { all {} } }
}
"""


def test_config_file_gives_names_paths_policies_and_labels():
    models = {model.name: model for model in model_config.parse_config_text(CONFIG)}

    assert models["sentiment"].base_path == os.path.abspath("exports/sentiment")
    assert (models["sentiment"].policy, models["sentiment"].num_versions) == ("latest", 1)
    assert (models["tagging"].policy, models["tagging"].versions) == ("specific", frozenset({1, 3}))
    assert models["tagging"].labels == {"stable": 1, "canary": 3}
    assert (models["translation"].policy, models["translation"].num_versions) == ("latest", 2)
    assert models["everything"].policy == "all"


@pytest.mark.parametrize("policy, expected", [
    (dict(policy="latest"), {7}), (dict(policy="latest", num_versions=2), {5, 7}), (dict(policy="all"), {1, 5, 7}),
    (dict(policy="specific", versions=frozenset({1, 9})), {1}),
])
def test_version_policies_pick_from_the_versions_on_disk(policy, expected):
    assert model_config.ModelConfig("m", "/m", **policy).aspired_versions([5, 1, 7]) == expected


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: 'a' base_pat: '/a' } }", "Invalid protobuf file: 'bad.config'"),
    ("model_config_list { config { base_path: '/a' } }", "has no name"),
    ("model_config_list { config { name: 'a' } }", "base_path is required"),
    ("model_config_list { config { name: 'a' base_path: '/a' model_platform: 'pytorch' } }", "not supported"),
    ("model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }", "unique"),
])
def test_bad_config_files_fail_with_the_file_named(text, message):
    with pytest.raises(ValueError, match=message):
        model_config.parse_config_text(text, "bad.config")


def _version_folders(base_path, *versions) -> None:
    for version in versions:
        os.makedirs(os.path.join(base_path, str(version)), exist_ok=True)


class FakeServable:
    def __init__(self, name, version, path):
        if os.path.exists(os.path.join(path, "broken")):
            raise ValueError(f"cannot load {path}")
        self.name, self.version, self.path = name, version, path


def test_polling_loads_new_versions_and_unloads_removed_ones(tmp_path):
    base_path = str(tmp_path / "model")
    _version_folders(base_path, 1, "00000002", ".tmp-3", "notes")
    manager = model_manager.ModelManager([model_config.ModelConfig("m", base_path, num_versions=2)], FakeServable)
    manager.poll()
    assert manager.servable("m").version == 2 and manager.servable("m", 1).version == 1
    assert manager.servable("m", 2).path.endswith("00000002")

    _version_folders(base_path, 3)
    manager.poll()

    assert manager.servable("m").version == 3
    with pytest.raises(status.ServingError, match=r"Specific\(m, 1\)"):
        manager.servable("m", 1)
    assert [(version, state.state) for version, state in manager.version_states("m")] == [
        (3, "AVAILABLE"), (2, "AVAILABLE"), (1, "END")]


def test_failed_load_is_retried_max_num_load_retries_times_then_again_when_its_files_change(tmp_path):
    base_path = str(tmp_path / "model")
    _version_folders(base_path, 1, 2)
    open(os.path.join(base_path, "2", "broken"), "w").close()
    attempts = []

    def loader(name, version, path):
        attempts.append(version)
        return FakeServable(name, version, path)

    policy = model_manager.LoadPolicy(max_num_load_retries=2, load_retry_interval_seconds=0)
    manager = model_manager.ModelManager([model_config.ModelConfig("m", base_path, policy="all")], loader, policy)
    for _ in range(6):
        manager.poll()

    assert manager.servable("m").version == 1
    state = dict(manager.version_states("m"))[2]
    assert (state.state, state.error_code) == ("END", "UNKNOWN") and "cannot load" in state.error_message
    assert attempts.count(2) == 3  # the first attempt and two retries

    os.remove(os.path.join(base_path, "2", "broken"))  # the copy finished
    manager.poll()

    assert manager.servable("m").version == 2 and attempts.count(2) == 4


def test_retries_wait_for_the_load_retry_interval(tmp_path):
    base_path = str(tmp_path / "model")
    _version_folders(base_path, 1)
    open(os.path.join(base_path, "1", "broken"), "w").close()
    attempts = []

    def loader(name, version, path):
        attempts.append(version)
        return FakeServable(name, version, path)

    policy = model_manager.LoadPolicy(max_num_load_retries=5, load_retry_interval_seconds=3600)
    manager = model_manager.ModelManager([model_config.ModelConfig("m", base_path)], loader, policy)
    for _ in range(3):
        manager.poll()

    assert attempts == [1]
    assert dict(manager.version_states("m"))[1].state == "LOADING"  # retries are still to come


def test_a_new_version_that_fails_to_load_leaves_the_old_one_serving(tmp_path):
    """TF Serving's availability-preserving policy: unload only once the replacement is AVAILABLE."""
    base_path = str(tmp_path / "model")
    _version_folders(base_path, 1)
    manager = model_manager.ModelManager([model_config.ModelConfig("m", base_path)], FakeServable,
                                         model_manager.LoadPolicy(load_retry_interval_seconds=0))
    manager.poll()
    _version_folders(base_path, 2)
    open(os.path.join(base_path, "2", "broken"), "w").close()

    manager.poll()

    assert manager.servable("m").version == 1
    assert [(version, state.state) for version, state in manager.version_states("m")] == [
        (2, "LOADING"), (1, "AVAILABLE")]

    os.remove(os.path.join(base_path, "2", "broken"))
    manager.poll()

    assert manager.servable("m").version == 2
    assert [(version, state.state) for version, state in manager.version_states("m")] == [
        (2, "AVAILABLE"), (1, "END")]


def test_removing_every_version_keeps_the_last_one_serving(tmp_path):
    base_path = str(tmp_path / "model")
    _version_folders(base_path, 1, 2)
    manager = model_manager.ModelManager([model_config.ModelConfig("m", base_path, policy="all")], FakeServable)
    manager.poll()
    for version in ("1", "2"):
        os.rmdir(os.path.join(base_path, version))

    manager.poll()

    assert manager.servable("m").version == 2
    with pytest.raises(status.ServingError, match=r"Specific\(m, 1\)"):
        manager.servable("m", 1)


def test_labels_unknown_models_and_config_updates(tmp_path):
    _version_folders(str(tmp_path / "a"), 1, 2)
    config = model_config.ModelConfig("a", str(tmp_path / "a"), policy="all", labels={"stable": 1})
    manager = model_manager.ModelManager([config], FakeServable)
    manager.poll()
    manager.apply_labels()

    assert manager.servable("a", label="stable").version == 1
    with pytest.raises(status.ServingError, match="Unrecognized servable version label: nope") as raised:
        manager.servable("a", label="nope")
    assert raised.value.http_status == 400
    with pytest.raises(status.ServingError, match=r"Latest\(b\)") as raised:
        manager.servable("b")
    assert raised.value.http_status == 404

    _version_folders(str(tmp_path / "b"), 4)
    manager.update_config([model_config.ModelConfig("b", str(tmp_path / "b"))])
    assert manager.model_names() == ["b"] and manager.servable("b").version == 4
    with pytest.raises(status.ServingError, match="Could not find any versions of model a"):
        manager.version_states("a")


def test_a_label_must_name_an_available_version(tmp_path):
    _version_folders(str(tmp_path / "a"), 1)
    manager = model_manager.ModelManager([model_config.ModelConfig("a", str(tmp_path / "a"))], FakeServable)
    manager.poll()

    with pytest.raises(status.ServingError, match="Request to assign label to version 5 of model a, which is not "
                                                  "currently available for inference") as raised:
        manager.update_config([model_config.ModelConfig("a", str(tmp_path / "a"), labels={"next": 5})])

    assert raised.value.code == "FAILED_PRECONDITION"
    with pytest.raises(status.ServingError, match="Unrecognized servable version label: next"):
        manager.servable("a", label="next")


def test_allow_version_labels_for_unavailable_models_takes_new_labels_but_never_moves_one(tmp_path):
    _version_folders(str(tmp_path / "a"), 1)
    policy = model_manager.LoadPolicy(allow_version_labels_for_unavailable_models=True)
    manager = model_manager.ModelManager([model_config.ModelConfig("a", str(tmp_path / "a"))], FakeServable, policy)
    manager.update_config([model_config.ModelConfig("a", str(tmp_path / "a"), labels={"stable": 1, "next": 5})])

    with pytest.raises(status.ServingError, match=r"Specific\(a, 5\)"):
        manager.servable("a", label="next")
    with pytest.raises(status.ServingError, match="version 6 of model a"):
        manager.update_config([model_config.ModelConfig("a", str(tmp_path / "a"), labels={"stable": 6})])
    assert manager.servable("a", label="stable").version == 1


def test_serving_config_verb_lists_every_exported_model(tmp_path):
    _version_folders(str(tmp_path / "exports" / "sentiment"), 1, 2)
    _version_folders(str(tmp_path / "exports" / "tagging"), 1)
    os.makedirs(tmp_path / "exports" / "empty")

    text = model_config.config_text_for_exports(str(tmp_path / "exports"))
    models = model_config.parse_config_text(text)

    assert [(model.name, model.base_path) for model in models] == [
        ("sentiment", "/models/sentiment"), ("tagging", "/models/tagging")]
    process = helpers.run_cli("serving-config", str(tmp_path / "exports"), "--base_path_prefix", str(tmp_path))
    assert process.returncode == 0, process.stderr
    assert [model.base_path for model in model_config.parse_config_text(process.stdout)] == [
        str(tmp_path / "sentiment"), str(tmp_path / "tagging")]


def test_serve_verb_hands_its_flags_to_the_server(tmp_path, capsys):
    assert cli.main(["serve", f"--model_base_path={tmp_path / 'missing'}", "--model_name=m"]) == 2
    assert "base path" in capsys.readouterr().err


def test_production_files_serve_the_exports_folder_with_the_generated_config():
    import yaml
    import tensorflow as tf
    release = ".".join(tf.__version__.split(".")[:2]) + ".0"  # the TF Serving release of the exports' TensorFlow
    compose = yaml.safe_load((helpers.REPOSITORY / "serving" / "docker-compose.yml").read_text())
    service = compose["services"]["tensorflow-serving"]
    assert service["image"] == f"tensorflow/serving:{release}"
    assert "../exports:/models:ro" in service["volumes"]
    config_mount, = [volume for volume in service["volumes"] if isinstance(volume, dict)
                     and volume["target"] == "/config/models.config"]
    assert config_mount["bind"]["create_host_path"] is False  # never a directory created in its place
    assert "--model_config_file=/config/models.config" in service["command"]
    manifest = yaml.safe_load((helpers.REPOSITORY / "serving" / "kserve" / "inference_service.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "tensorflow" and model["runtimeVersion"] == release
    assert "storageUri" in model and "tensorflow" not in manifest["spec"]["predictor"]
    batching = (helpers.REPOSITORY / "serving" / "batching_parameters.txt").read_text()
    assert "batch_timeout_micros { value: 0 }" in batching and "num_batch_threads" in batching


def test_writing_models_config_replaces_the_empty_directory_docker_leaves(tmp_path):
    _version_folders(str(tmp_path / "exports" / "sentiment"), 1)
    target = tmp_path / "models.config"
    target.mkdir()  # what `docker compose up` creates when the file is missing

    assert model_config.main([str(tmp_path / "exports"), "--output", str(target)]) == 0

    assert [model.name for model in model_config.read_config_file(str(target))] == ["sentiment"]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert model_config.main([str(tmp_path / "exports"), "--output", str(tmp_path / "busy")]) == 1
