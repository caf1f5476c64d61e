"""`train --profile`: a profiler trace of a few training steps in <run_dir>/profile/."""

import sys

import pytest

import helpers

sys.path.insert(0, str(helpers.REPOSITORY / "benchmarks"))
import profile_summary  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def test_profile_writes_a_trace_of_the_chosen_steps(tmp_path, capsys):
    from pipeline import cli

    overrides = helpers.tiny_overrides(tmp_path) + ["train.epochs=1", "export.on_train_end=false"]
    arguments = ["train", str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml"), "--profile", "2,3"]
    assert cli.main(arguments + [item for override in overrides for item in ("--set", override)]) == 0
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    traces = sorted((tmp_path / "run" / "profile").glob("plugins/profile/*/*.xplane.pb"))
    assert run_dir == str(tmp_path / "run")
    assert len(traces) == 1 and traces[0].stat().st_size > 0
    # The trace holds the training step's ops: the recurrent layer's matrix products among them.
    summary = profile_summary.summarize(str(tmp_path / "run" / "profile"), top=50)
    assert summary["trace"] == str(traces[0]) and summary["ops_run"] > 0
    assert any("MatMul" in row["op_type"] for row in summary["top_op_types"])
    shares = [row["share"] for row in summary["top_op_types"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0001


def test_profile_summary_names_a_folder_without_trace(tmp_path, capsys):
    assert profile_summary.main([str(tmp_path)]) == 2
    assert str(tmp_path) in capsys.readouterr().err


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
