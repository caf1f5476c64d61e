"""Layer groups and gradual unfreezing (`train.gradual_unfreezing`), also across a killed and resumed run."""

import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

import helpers
import test_resume_exact
from pipeline import config as config_lib
from pipeline import fine_tuning
from pipeline import run_files
from pipeline import tasks
from pipeline import training
from pipeline.models import sentiment_classifier
from pipeline.models import sequence_tagger

_SENTIMENT = str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")
_TAGGING = str(helpers.REPOSITORY / "configs/tiny/tagging.yaml")


def _paths(groups: dict) -> dict[str, list[str]]:
    return {name: [variable.path for variable in variables] for name, variables in groups.items()}


def _sentiment(*overrides: str):
    config = config_lib.load_config([_SENTIMENT], ["train.gradual_unfreezing=true", *overrides])
    model = sentiment_classifier.build_sentiment_classifier(config.model, vocabulary_size=30, num_classes=2)
    return config, tasks.create_task(config), model


def test_sentiment_groups_are_embedding_each_recurrent_layer_and_the_head():
    config, task, model = _sentiment("model.layers=2", "model.bidirectional=true", "model.pooling=attention")

    groups = _paths(fine_tuning.variable_groups(config.train, task, model))

    assert list(groups) == ["embedding", "recurrent_0", "recurrent_1", "head"]
    assert groups["embedding"] == ["token_embedding/embeddings"]
    for index in (0, 1):  # both directions of a layer together
        assert {path.split("/")[2] for path in groups[f"recurrent_{index}"]} == {f"forward_gru_{index}",
                                                                                 f"backward_gru_{index}"}
    assert {path.split("/")[0] for path in groups["head"]} == {"pooling", "probabilities"}
    assert sorted(sum(groups.values(), [])) == sorted(variable.path for variable in model.trainable_weights)


@pytest.mark.parametrize("char_encoder", ["cnn", "bilstm", "none"])
def test_tagger_groups_put_the_character_encoder_with_the_embedding(char_encoder):
    config = config_lib.load_config([_TAGGING], ["train.discriminative_lr=2.6", f"model.char_encoder={char_encoder}"])
    model = sequence_tagger.build_sequence_tagger(config.model, vocabulary_size=30, char_vocabulary_size=20, num_tags=4)

    groups = _paths(fine_tuning.variable_groups(config.train, tasks.create_task(config), model))

    assert list(groups) == ["embedding", "recurrent_0", "head"]
    assert {path.split("/")[0] for path in groups["embedding"]} == (
        {"token_embedding"} | ({"char_encoder"} if char_encoder != "none" else set()))
    assert {path.split("/")[0] for path in groups["head"]} == {"tag_probabilities"}
    assert sorted(sum(groups.values(), [])) == sorted(variable.path for variable in model.trainable_weights)


def test_unfreezing_follows_the_epoch_number():
    assert [fine_tuning.trained_group_count(epoch, 3) for epoch in range(5)] == [1, 2, 3, 3, 3]


class _TrainableRecorder(keras.callbacks.Callback):
    """Per epoch: the trainable weights' paths, and every weight's value at its first step and at its end."""

    def __init__(self):
        super().__init__()
        self.trainable, self.at_start, self.at_end = {}, {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        # Here, not at the epoch's start: weight averaging swaps the raw weights back in between the two.
        if batch == 0:
            self.at_start[self.epoch] = {variable.path: variable.numpy() for variable in self.model.weights}
            self.trainable[self.epoch] = sorted(variable.path for variable in self.model.trainable_weights)

    def on_epoch_end(self, epoch, logs=None):
        self.at_end[epoch] = {variable.path: variable.numpy() for variable in self.model.weights}


def _check_frozen_and_trained(recorder: _TrainableRecorder, groups: dict[str, list[str]]) -> None:
    """Each epoch trains the top groups its number says; trained weights move, and a group not trained yet
    keeps its first weights bit for bit, through the epochs' swaps of averaged weights too."""
    names = list(groups)
    first = recorder.at_start[min(recorder.at_start)]
    for epoch in recorder.trainable:
        trained = names[len(names) - fine_tuning.trained_group_count(epoch, len(names)):]
        assert recorder.trainable[epoch] == sorted(path for name in trained for path in groups[name]), epoch
        for name in names:
            if name in trained:
                assert all(not np.array_equal(recorder.at_start[epoch][path], recorder.at_end[epoch][path])
                           for path in groups[name]), f"epoch {epoch + 1}: {name} did not train"
                continue
            for path in groups[name]:
                assert np.array_equal(recorder.at_start[epoch][path], first[path]), f"epoch {epoch + 1}: {path}"
                assert np.array_equal(recorder.at_end[epoch][path], first[path]), f"epoch {epoch + 1}: {path}"


def test_each_epoch_trains_one_more_group_from_the_top_and_frozen_weights_stay_bit_for_bit():
    config, task, model = _sentiment("train.optimizer=adamw", "train.ema_momentum=0.9", "train.discriminative_lr=2.6",
                                     "train.epochs=4")
    training.compile_model(model, task, config, steps_per_epoch=2)  # 16 examples in batches of 8
    groups = fine_tuning.variable_groups(config.train, task, model)
    recorder = _TrainableRecorder()
    generator = np.random.default_rng(0)
    features = {"token_ids": generator.integers(1, 30, size=(16, 7)).astype("int32")}
    labels = generator.integers(0, 2, size=(16,))

    model.fit(features, labels, batch_size=8, epochs=4, verbose=0,
              callbacks=fine_tuning.callbacks(config.train, task, model)
              + [recorder, keras.callbacks.SwapEMAWeights(swap_on_epoch=True)])

    _check_frozen_and_trained(recorder, _paths(groups))
    assert len(model.trainable_weights) == len(model.weights), "every group is trainable again after training"


def test_weights_the_model_froze_itself_stay_frozen():
    config, task, model = _sentiment()
    model.get_layer("token_embedding").trainable = False  # e.g. pretrained vectors kept fixed
    training.compile_model(model, task, config, steps_per_epoch=2)
    unfreezing = fine_tuning.callbacks(config.train, task, model)[0]
    unfreezing.set_model(model)

    unfreezing.on_train_begin()
    unfreezing.on_epoch_begin(5)

    assert unfreezing.groups["embedding"] == []
    assert "token_embedding/embeddings" not in {variable.path for variable in model.trainable_weights}


@pytest.mark.parametrize("task_config", ["translation.yaml", "lm.yaml", "captioning.yaml"])
@pytest.mark.parametrize("key", ["train.discriminative_lr=2.6", "train.gradual_unfreezing=true"])
def test_tasks_without_layer_groups_refuse_the_keys_when_the_config_loads(task_config, key):
    with pytest.raises(config_lib.ConfigError, match=rf"{key.split('=')[0]}: the \w+ task has no layer groups "
                                                      r"to fine-tune \(tasks that have: sentiment, tagging\)"):
        config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny" / task_config)], [key])


def test_a_factor_below_one_is_refused():
    with pytest.raises(config_lib.ConfigError, match=r"train\.discriminative_lr: must be >= 1 or null \(got 0\.5\)"):
        config_lib.load_config([_SENTIMENT], ["train.discriminative_lr=0.5"])


def test_a_task_whose_hook_names_no_groups_is_refused_when_training_starts():
    config, task, model = _sentiment()
    task.layer_groups = lambda model: None

    with pytest.raises(config_lib.ConfigError, match=r"train\.gradual_unfreezing: the sentiment task has no"):
        training.compile_model(model, task, config, steps_per_epoch=2)


def test_a_weight_in_no_group_is_reported():
    config, task, model = _sentiment()
    groups = task.layer_groups(model)
    task.layer_groups = lambda model: {name: layers for name, layers in groups.items() if name != "head"}

    with pytest.raises(ValueError, match=r"probabilities/kernel.*are in no group"):
        fine_tuning.variable_groups(config.train, task, model)


# Every option of the fine-tuning schedule at once, with weight averaging and dropout, on three layer groups.
_SETTINGS = ["data.synthetic_examples=160", "train.batch_size=16", "train.epochs=3", "model.dropout=0.2",
             "train.ema_momentum=0.9", "train.gradual_unfreezing=true", "train.discriminative_lr=2.6",
             "train.learning_rate_schedule=slanted_triangular", "export.on_train_end=false"]



@pytest.mark.slow
def test_gradual_unfreezing_survives_a_kill_and_resumes_bit_for_bit(tmp_path):
    overrides = {name: helpers.tiny_overrides(tmp_path / name) + _SETTINGS for name in ("whole", "killed")}
    arguments = ["train", _SENTIMENT, *(item for override in overrides["killed"] for item in ("--set", override))]
    # Killed at the third step of epoch 2, after epoch 1's checkpoint (the harness of test_resume_exact).
    killed = subprocess.Popen([sys.executable, "-c", test_resume_exact._KILLED_RUN, "mid_epoch", *arguments],
                              cwd=helpers.REPOSITORY, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    try:
        whole_recorder = _TrainableRecorder()
        whole_config = config_lib.load_config([_SENTIMENT], overrides["whole"])
        training.train(whole_config, callbacks=[whole_recorder])  # meanwhile
        _, errors = killed.communicate(timeout=600)
    finally:
        killed.kill()  # no-op once it has ended
    assert killed.returncode == -signal.SIGKILL, errors[-3000:]
    assert training.resumed_epoch(str(tmp_path / "killed" / "run")) == 1

    resumed_recorder = _TrainableRecorder()
    training.train(config_lib.load_config([_SENTIMENT], overrides["killed"]), callbacks=[resumed_recorder])

    task = tasks.create_task(whole_config)
    model = sentiment_classifier.build_sentiment_classifier(whole_config.model, vocabulary_size=30, num_classes=2)
    groups = _paths(fine_tuning.variable_groups(whole_config.train, task, model))
    assert list(groups) == ["embedding", "recurrent_0", "head"]
    _check_frozen_and_trained(whole_recorder, groups)
    assert sorted(resumed_recorder.trainable) == [1, 2]  # epochs 2 and 3, unfrozen as in the whole run
    assert {epoch: resumed_recorder.trainable[epoch] for epoch in (1, 2)} == {
        epoch: whole_recorder.trainable[epoch] for epoch in (1, 2)}
    for name in ("whole", "killed"):
        assert (tmp_path / name / "run" / run_files.HISTORY).exists()
    assert ((tmp_path / "killed" / "run" / run_files.HISTORY).read_text()
            == (tmp_path / "whole" / "run" / run_files.HISTORY).read_text())
    last = sorted(os.listdir(tmp_path / "whole" / "run" / run_files.LAST_CHECKPOINT))
    assert sorted(os.listdir(tmp_path / "killed" / "run" / run_files.LAST_CHECKPOINT)) == last
    for file_name in (name for name in last if name.endswith(".h5")):
        whole = helpers.weights_file_arrays(tmp_path / "whole" / "run" / run_files.LAST_CHECKPOINT / file_name)
        resumed = helpers.weights_file_arrays(tmp_path / "killed" / "run" / run_files.LAST_CHECKPOINT / file_name)
        assert whole.keys() == resumed.keys()
        for array_name, array in whole.items():
            assert np.array_equal(resumed[array_name], array), f"{file_name}/{array_name} differs"
