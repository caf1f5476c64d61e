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
