"""runtime.distribution: worker roles from TF_CONFIG, config checks, mirrored training with resume, and
two worker processes training together with exactly one export."""

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import helpers
from pipeline import config as config_lib
from pipeline import run_state
from pipeline import distribution

TINY_SENTIMENT = str(helpers.REPOSITORY / "configs" / "tiny" / "sentiment.yaml")


def tf_config(task_type: str, index: int, cluster: dict | None = None) -> dict:
    cluster = cluster or {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}


# === Roles ===


@pytest.mark.parametrize("environment, expected", [
    ({}, True),
    ({"TF_CONFIG": ""}, True),
    (tf_config("worker", 0), True),
    (tf_config("worker", 1), False),
    (tf_config("chief", 0, {"chief": ["a:1"], "worker": ["b:1", "c:1"]}), True),
    (tf_config("worker", 0, {"chief": ["a:1"], "worker": ["b:1", "c:1"]}), False),
    (tf_config("evaluator", 0, {"worker": ["b:1"], "evaluator": ["e:1"]}), False),
])
def test_chief_is_worker_zero_unless_the_cluster_has_a_chief(environment, expected):
    assert distribution.is_chief(environment) is expected


def test_only_multi_worker_training_reads_tf_config():
    worker_one = tf_config("worker", 1)

    assert not distribution.writes_files(config_lib.RuntimeConfig(distribution="multi_worker"), worker_one)
    assert distribution.writes_files(config_lib.RuntimeConfig(distribution="mirrored"), worker_one)
    assert distribution.writes_files(config_lib.RuntimeConfig(), {"TF_CONFIG": "{not json"})


def test_worker_count_counts_chief_and_workers_only():
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"], "evaluator": ["e:1"]}

    assert distribution.worker_count({}) == 1
    assert distribution.worker_count(tf_config("worker", 0)) == 2
    assert distribution.worker_count(tf_config("chief", 0, cluster)) == 3


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}),
     "task type 'chief' is not a job of the cluster"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}),
     "task index 1 is out of range"),
])
def test_bad_tf_config_is_reported(text, message):
    with pytest.raises(ValueError, match=message):
        distribution.is_chief({"TF_CONFIG": text})


# === Config ===


def test_unknown_distribution_suggests_the_closest():
    with pytest.raises(config_lib.ConfigError, match=r"runtime.distribution: 'mirored' is not one of .*"
                                                     r"Did you mean 'mirrored'\?"):
        config_lib.load_config([TINY_SENTIMENT], ["runtime.distribution=mirored"])


def test_tpu_address_needs_the_tpu_distribution():
    with pytest.raises(config_lib.ConfigError, match="runtime.tpu_address: only used with"):
        config_lib.load_config([TINY_SENTIMENT], ["runtime.tpu_address=grpc://10.0.0.2:8470"])

    config = config_lib.load_config([TINY_SENTIMENT], ["runtime.distribution=tpu",
                                                       "runtime.tpu_address=grpc://10.0.0.2:8470"])
    assert config.runtime.tpu_address == "grpc://10.0.0.2:8470"


def test_carried_state_is_refused_under_a_strategy():
    language_model = str(helpers.REPOSITORY / "configs" / "tiny" / "lm.yaml")

    with pytest.raises(config_lib.ConfigError, match="train.carry_state: not supported with "
                                                     "runtime.distribution: mirrored"):
        config_lib.load_config([language_model], ["runtime.distribution=mirrored", "train.carry_state=true"])


def test_default_is_no_strategy():
    config = config_lib.load_config([TINY_SENTIMENT])

    assert config.runtime.distribution == "none"
    assert distribution.create_strategy(config.runtime) is None


# === Training ===

# Two logical CPU devices make MirroredStrategy keep two replicas in sync on one CPU. The run trains one
# epoch, then a second process continues it to two epochs, resuming from the first one's last checkpoint
# (a new process, as after a crash: two strategies in one process share collective-op state).
_MIRRORED_SCRIPT = textwrap.dedent("""
    import json, logging, sys
    import tensorflow as tf
    logging.basicConfig(level=logging.INFO)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from pipeline import config as config_lib, distribution, training
    config_path, directory, epochs = sys.argv[1:4]
    overrides = [f"runtime.run_dir={directory}/run", f"export.dir={directory}/exports", "train.steps_per_epoch=2",
                 "data.synthetic_examples=200", "runtime.distribution=mirrored", f"train.epochs={epochs}"]
    config = config_lib.load_config([config_path], overrides)
    strategy = distribution.create_strategy(config.runtime)
    training.train(config, strategy)
    print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync}))
""")


def read_history(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "logs", "history.csv"), newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_mirrored_training_on_two_replicas_resumes(tmp_path):
    processes = [subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, TINY_SENTIMENT, str(tmp_path), str(epochs)],
                                cwd=helpers.REPOSITORY, capture_output=True, text=True, timeout=300,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
                 for epochs in (1, 2)]
    for process in processes:
        assert process.returncode == 0, process.stderr[-5000:]
        assert json.loads(process.stdout.split("RESULT ")[-1])["replicas"] == 2

    assert "resuming" in processes[1].stderr and "after 1 finished epoch(s)" in processes[1].stderr
    assert [row["epoch"] for row in read_history(tmp_path / "run")] == ["0", "1"]
    assert (tmp_path / "run" / "model.keras").exists()
    assert "test" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for item in sockets:
            item.bind(("127.0.0.1", 0))
        return [item.getsockname()[1] for item in sockets]
    finally:
        for item in sockets:
            item.close()


# Learns within 30 steps of a global batch of 32.
WORKER_OVERRIDES = ["runtime.distribution=multi_worker", "train.epochs=3", "train.steps_per_epoch=10",
                    "train.learning_rate=0.02", "model.bidirectional=true"]


def start_worker(index: int, addresses: list[str], directory) -> subprocess.Popen:
    """One `python -m pipeline train` process, its own run directory (as on its own machine)."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}))
    command = [sys.executable, "-m", "pipeline", "train", TINY_SENTIMENT]
    for override in worker_overrides(index, directory):
        command += ["--set", override]
    return subprocess.Popen(command, cwd=helpers.REPOSITORY, env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def worker_overrides(index: int, directory) -> list[str]:
    return [f"runtime.run_dir={directory / f'run{index}'}", f"export.dir={directory / 'exports'}",
            *WORKER_OVERRIDES]


def run_two_workers(directory) -> tuple[list[int], list[str], str]:
    """Return codes, logs, and both logs for an assertion message (the workers are killed after 240 s)."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = [start_worker(index, addresses, directory) for index in range(2)]
    logs = []
    try:
        for worker in workers:
            logs.append(worker.communicate(timeout=240)[0])
    finally:
        for worker in workers:
            worker.kill()  # no-op for a finished worker
    shown = "\n".join(f"--- worker {index} ---\n{log[-4000:]}" for index, log in enumerate(logs))
    return [worker.returncode for worker in workers], logs, shown


@pytest.mark.slow
def test_two_workers_train_together_and_export_once(tmp_path):
    return_codes, logs, shown = run_two_workers(tmp_path)

    assert return_codes == [0, 0], shown
    assert "2 replica(s) in sync" in logs[0], shown
    history = read_history(tmp_path / "run0")
    assert len(history) == 3, shown
    for key in ("loss", "val_loss"):
        assert float(history[-1][key]) < float(history[0][key]) - 0.01, history
    assert os.listdir(tmp_path / "exports" / "tiny_sentiment") == ["1"]  # one export, no temporary folder
    assert (tmp_path / "run0" / "checkpoints" / "last").is_dir()
    assert not (tmp_path / "run1").exists()  # the other worker wrote only to a deleted temporary folder
    assert "exported" not in logs[1]


@pytest.mark.slow
def test_workers_that_would_resume_differently_stop_with_an_error(tmp_path):
    # The chief's run directory holds a checkpoint after one epoch; worker 1's (not shared) holds none.
    config = config_lib.load_config([TINY_SENTIMENT], worker_overrides(0, tmp_path))
    config_lib.save_config(config, str(tmp_path / "run0" / "config.yaml"))
    run_state.save(str(tmp_path / "run0"), run_state.TrainingState(epochs_done=1))

    return_codes, logs, shown = run_two_workers(tmp_path)

    assert return_codes == [2, 2], shown
    for log in logs:
        assert "error: the workers would resume" in log and "different epochs (0 and 1)" in log, shown


# === Kubernetes manifest ===


def test_kubernetes_manifest_gives_each_pod_a_consistent_tf_config():
    import re
    import shlex

    import yaml

    path = helpers.REPOSITORY / "deploy" / "kubernetes" / "multi_worker_training.yaml"
    documents = {document["kind"]: document for document in yaml.safe_load_all(path.read_text())}
    service, job = documents["Service"], documents["Job"]
    pod = job["spec"]["template"]["spec"]
    script = pod["containers"][0]["args"][0]
    addresses = json.loads(re.search(r'"cluster": (\{.*?\})', script.replace('\\"', '"')).group(1))["worker"]

    assert service["spec"]["clusterIP"] == "None" and pod["subdomain"] == service["metadata"]["name"]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == len(addresses)
    assert addresses == [f"{job['metadata']['name']}-{index}.{service['metadata']['name']}:12345"
                         for index in range(len(addresses))]
    assert '"index\\": ${JOB_COMPLETION_INDEX}' in script
    command = shlex.split(script.partition("exec ")[2])
    assert command[:4] == ["python", "-m", "pipeline", "train"]
    overrides = [command[index + 1] for index, word in enumerate(command) if word == "--set"]
    config = config_lib.load_config([str(helpers.REPOSITORY / command[4])], overrides)
    assert config.runtime.distribution == "multi_worker"
    assert config.run_dir.startswith(pod["containers"][0]["volumeMounts"][0]["mountPath"])
