"""`train --profile`: a profiler trace of a few training steps in <run_dir>/profile/."""

import pytest

import helpers


def test_profile_writes_a_trace_of_the_chosen_steps(tmp_path):
    from pipeline import config as config_lib
    from pipeline import training

    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                                    helpers.tiny_overrides(tmp_path) + ["train.epochs=1"])
    run_dir = training.train(config, profile_steps=(2, 3))
    traces = sorted((tmp_path / "run" / "profile").glob("plugins/profile/*/*.xplane.pb"))
    assert run_dir == str(tmp_path / "run")
    assert len(traces) == 1 and traces[0].stat().st_size > 0


@pytest.mark.parametrize("value", ["0,3", "5,2", "ten", "1,2,3"])
def test_bad_profile_steps_are_refused_before_training(value, capsys):
    from pipeline import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "configs/tiny/sentiment.yaml", "--profile", value])
    assert exit_info.value.code == 2
    assert "FIRST,LAST" in capsys.readouterr().err


def test_profile_without_steps_uses_the_default():
    from pipeline import cli

    arguments = cli._parser().parse_args(["train", "configs/tiny/sentiment.yaml", "--profile"])
    assert arguments.profile == (10, 15)
    assert cli._parser().parse_args(["train", "a.yaml", "--profile", "7"]).profile == (7, 7)
    assert cli._parser().parse_args(["train", "a.yaml"]).profile is None
