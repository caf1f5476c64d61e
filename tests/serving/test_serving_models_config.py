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


def test_failed_load_is_reported_and_retried_a_bounded_number_of_times(tmp_path):
    base_path = str(tmp_path / "model")
    _version_folders(base_path, 1, 2)
    open(os.path.join(base_path, "2", "broken"), "w").close()
    attempts = []

    def loader(name, version, path):
        attempts.append(version)
        return FakeServable(name, version, path)

    manager = model_manager.ModelManager([model_config.ModelConfig("m", base_path, policy="all")], loader)
    for _ in range(model_manager.MAX_LOAD_ATTEMPTS + 3):
        manager.poll()

    assert manager.servable("m").version == 1
    state = dict(manager.version_states("m"))[2]
    assert (state.state, state.error_code) == ("END", "UNKNOWN") and "cannot load" in state.error_message
    assert attempts.count(2) == model_manager.MAX_LOAD_ATTEMPTS


def test_labels_unknown_models_and_config_updates(tmp_path):
    _version_folders(str(tmp_path / "a"), 1, 2)
    config = model_config.ModelConfig("a", str(tmp_path / "a"), policy="all", labels={"stable": 1, "next": 5})
    manager = model_manager.ModelManager([config], FakeServable)
    manager.poll()

    assert manager.servable("a", label="stable").version == 1
    with pytest.raises(status.ServingError, match="Unrecognized servable version label: nope") as raised:
        manager.servable("a", label="nope")
    assert raised.value.http_status == 400
    with pytest.raises(status.ServingError, match=r"Specific\(a, 5\)"):
        manager.servable("a", label="next")
    with pytest.raises(status.ServingError, match=r"Latest\(b\)") as raised:
        manager.servable("b")
    assert raised.value.http_status == 404

    _version_folders(str(tmp_path / "b"), 4)
    manager.update_config([model_config.ModelConfig("b", str(tmp_path / "b"))])
    manager.poll()
    assert manager.model_names() == ["b"] and manager.servable("b").version == 4
    with pytest.raises(status.ServingError, match="Could not find any versions of model a"):
        manager.version_states("a")


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
    compose = yaml.safe_load((helpers.REPOSITORY / "serving" / "docker-compose.yml").read_text())
    service = compose["services"]["tensorflow-serving"]
    assert service["image"].startswith("tensorflow/serving")
    assert "../exports:/models:ro" in service["volumes"]
    assert "--model_config_file=/config/models.config" in service["command"]
    manifest = yaml.safe_load((helpers.REPOSITORY / "serving" / "kserve" / "inference_service.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert "storageUri" in manifest["spec"]["predictor"]["tensorflow"]
    batching = (helpers.REPOSITORY / "serving" / "batching_parameters.txt").read_text()
    assert "batch_timeout_micros { value: 0 }" in batching and "num_batch_threads" in batching
