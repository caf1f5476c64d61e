"""pipeline/run_files.py: reading a run's final metrics."""

import json

import pytest

from pipeline import run_files


def _write_metrics(run_dir, metrics):
    (run_dir / run_files.METRICS_FILE).write_text(json.dumps(metrics), encoding="utf-8")


def test_held_out_metrics_prefer_the_test_split(tmp_path):
    _write_metrics(tmp_path, {"validation": {"accuracy": 0.9}, "test": {"accuracy": 0.8}, "skipped_rows": {}})

    assert run_files.held_out_metrics(str(tmp_path)) == ("test", {"accuracy": 0.8})
    assert run_files.load_metrics(str(tmp_path))["validation"] == {"accuracy": 0.9}


def test_held_out_metrics_fall_back_to_validation(tmp_path):
    _write_metrics(tmp_path, {"validation": {"perplexity": 3.5}})

    assert run_files.held_out_metrics(str(tmp_path)) == ("validation", {"perplexity": 3.5})


def test_held_out_metrics_name_the_file_when_no_split_was_evaluated(tmp_path):
    _write_metrics(tmp_path, {"skipped_rows": {}})

    with pytest.raises(ValueError, match=r"metrics\.json: no test or validation metrics \(it has \['skipped_rows'\]\)"):
        run_files.held_out_metrics(str(tmp_path))


def test_load_metrics_of_an_untrained_run_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json: no metrics; run `python -m pipeline train`"):
        run_files.load_metrics(str(tmp_path))


def test_early_stop_summary_names_where_training_stopped_and_the_best_epoch(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / run_files.HISTORY).write_text(
        "epoch,loss,val_loss\n0,0.9,0.50\n1,0.7,0.41\n2,0.6,0.45\n3,0.5,nan\n", encoding="utf-8")

    assert run_files.early_stop_summary(str(tmp_path), "val_loss", 10) == (
        "training stopped early after epoch 4 of 10; best val_loss 0.4100 at epoch 2 (its weights are kept)")
    assert "best val_loss" not in run_files.early_stop_summary(str(tmp_path), "val_auc", 10)
