"""pyproject.toml: the installable package's metadata agrees with the code, requirements.txt and the tree."""

import os
import re
import subprocess
import sys
import tomllib

import pytest

import helpers
import pipeline
from pipeline.config import shipped

PYPROJECT = tomllib.loads((helpers.REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _requirements(name: str) -> list[str]:
    """The requirement lines of a requirements file, without comments and `-r` includes."""
    lines = (line.split("#")[0].strip() for line in (helpers.REPOSITORY / name).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def test_the_pipeline_command_is_declared():
    assert PROJECT["scripts"] == {"pipeline": "pipeline.cli:main"}


def test_the_version_is_the_package_version():
    assert PROJECT["dynamic"] == ["version"]
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "pipeline.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", pipeline.__version__)


def test_dependencies_and_the_serving_extra_are_requirements_txt():
    declared = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["serving"]

    assert sorted(declared) == sorted(_requirements("requirements.txt"))


def test_the_dev_extra_holds_requirements_dev_txt():
    extras = PROJECT["optional-dependencies"]
    dev = set(extras["dev"]) | set(extras["notebooks"])

    assert set(_requirements("requirements-dev.txt")) <= dev
    assert f"{PROJECT['name']}[serving,notebooks]" in extras["dev"]


def test_every_package_and_the_configs_ship():
    on_disk = {".".join(path.relative_to(helpers.REPOSITORY).parent.parts)
               for path in (helpers.REPOSITORY / "pipeline").rglob("__init__.py")}

    assert on_disk | {"pipeline.configs", "pipeline.configs.tiny", "serving"} == set(SETUPTOOLS["packages"])
    assert SETUPTOOLS["package-dir"] == {"pipeline.configs": "configs", "pipeline.configs.tiny": "configs/tiny"}
    assert sorted(os.listdir(helpers.REPOSITORY / "configs" / "tiny")) == sorted(
        f"{name.removeprefix('tiny/')}.yaml" for name in shipped.names() if name.startswith("tiny/"))


def test_the_license_is_apache_2():
    text = (helpers.REPOSITORY / "LICENSE").read_text(encoding="utf-8")

    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert text.startswith("Copyright") and "The pipeline authors" in text.splitlines()[0]


def test_version_flag_prints_the_version():
    process = helpers.run_cli("--version")

    assert process.returncode == 0
    assert process.stdout.strip() == f"python -m pipeline {pipeline.__version__}"


def test_shipped_configs_are_found_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert shipped.resolve("quickstart") == str(shipped.directory() / "quickstart.yaml")
    assert shipped.resolve("tiny/sentiment.yaml") == shipped.resolve("configs/tiny/sentiment.yaml")


def test_an_existing_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("name: mine\n", encoding="utf-8")

    assert shipped.resolve("quickstart") == "quickstart"


def test_an_unknown_name_lists_the_shipped_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ValueError, match=r"quikstart: config file not found.*Did you mean 'quickstart'.*tiny/lm"):
        shipped.resolve("quikstart")


@pytest.mark.slow
def test_train_by_name_writes_under_the_working_directory(tmp_path):
    """Relative paths in a config (here the default `runs/<name>`) are relative to the working directory."""
    process = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", "tiny/sentiment", "--set", "train.epochs=1",
         "--set", "data.synthetic_examples=100", "--set", "export.on_train_end=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(helpers.REPOSITORY)))

    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.strip().splitlines()[-1] == os.path.join("runs", "tiny_sentiment")
    assert (tmp_path / "runs" / "tiny_sentiment" / "metrics.json").exists()
