"""The speed suite (benchmarks/speed_suite.py): FLOP counting against TensorFlow's profiler, section selection, and
a quick run of this repository's own sections checked for the JSON line schema (not for speed)."""

import collections
import json
import os
import subprocess
import sys

import pytest

import helpers

sys.path.insert(0, str(helpers.REPOSITORY / "benchmarks"))
import flops  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
import speed_suite  # noqa: E402

# The sections written in this repository's benchmarks/ with the suite; decoding, precision_compile and
# serving_xla have their own tests.
OWN_SECTIONS = ("matmul_peak", "training_flops", "pipeline_vs_fit", "input_share", "bucketing")
SCHEMA = ("figure", "value", "baseline", "ratio", "target", "target_met", "machine", "command", "section")


def profiled_float_ops(layer_class, batch_size: int, time_steps: int, input_size: int, units: int) -> dict:
    """Float operations per op type that TensorFlow's graph profiler counts in one unrolled recurrent layer."""
    import tensorflow as tf

    layer = layer_class(units, unroll=True)  # unrolled: every step's ops are in the graph, not in a loop body
    function = tf.function(layer).get_concrete_function(
        tf.TensorSpec([batch_size, time_steps, input_size], tf.float32))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(function.graph, options=options)
    by_type = collections.Counter()
    for node in profile.children:
        by_type[function.graph.get_operation_by_name(node.name).type] += node.total_float_ops
    return dict(by_type)


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple_rnn"])
def test_analytic_flops_match_the_profiler_on_one_layer(cell):
    import keras

    layer_class = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM, "simple_rnn": keras.layers.SimpleRNN}[cell]
    batch_size, time_steps, input_size, units = 4, 3, 32, 16
    profiled = profiled_float_ops(layer_class, batch_size, time_steps, input_size, units)
    analytic = flops.recurrent_stack_forward_flops(cell, input_size, units, layers=1, bidirectional=False,
                                                   batch_size=batch_size, time_steps=time_steps)
    matmul_flops = 2 * flops.GATES[cell] * units * (input_size + units) * batch_size * time_steps
    assert profiled["MatMul"] == matmul_flops
    # The analytic count adds the biases and leaves out the gates' elementwise products and sums, which the
    # profiler counts: it lies between the profiler's matmuls + BiasAdd and its total, within 10% of the total.
    assert profiled["MatMul"] + profiled["BiasAdd"] <= analytic <= sum(profiled.values())
    assert analytic >= 0.9 * sum(profiled.values())


def test_bidirectional_stack_flops_double_and_feed_the_next_layer():
    one_direction = flops.recurrent_stack_forward_flops("gru", 128, 64, 1, False, batch_size=2, time_steps=5)
    assert flops.recurrent_stack_forward_flops("gru", 128, 64, 1, True, 2, 5) == 2 * one_direction
    second_layer = 2 * flops.recurrent_step_flops("gru", 128, 64) * 2 * 5  # its input: both directions, 128
    assert flops.recurrent_stack_forward_flops("gru", 128, 64, 2, True, 2, 5) == 2 * one_direction + second_layer
    with pytest.raises(ValueError, match="cell"):
        flops.recurrent_step_flops("transformer", 8, 8)


def run_suite(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/speed_suite.py", *arguments], cwd=helpers.REPOSITORY,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_only_rejects_unknown_sections():
    result = run_suite("--only", "matmul_peak,warp_speed")
    assert result.returncode == 2
    assert "warp_speed" in result.stderr and "matmul_peak" in result.stderr


def test_a_failing_section_becomes_an_error_line():
    lines = speed_suite.run_section("decoding", "no_such_benchmark_module", quick=True, machine="test machine")
    assert len(lines) == 1
    assert lines[0]["section"] == "decoding" and "ModuleNotFoundError" in lines[0]["error"]
    assert lines[0]["command"] == "python benchmarks/speed_suite.py --only decoding --quick"


@pytest.mark.slow
def test_quick_run_of_own_sections_writes_one_schema_line_per_figure(tmp_path):
    output = tmp_path / "speed_suite.jsonl"
    result = run_suite("--quick", "--only", ",".join(OWN_SECTIONS), "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert printed == written
    assert [figure["section"] for figure in printed] == [
        "matmul_peak", "training_flops", "pipeline_vs_fit", "input_share", "bucketing"]
    for figure in printed:
        assert set(SCHEMA) <= set(figure), figure
        assert figure["quick"] is True and "error" not in figure
        assert figure["command"] == f"python benchmarks/speed_suite.py --only {figure['section']} --quick"
        assert isinstance(figure["value"], float) and figure["value"] > 0
        if figure["section"] != "matmul_peak":
            assert figure["baseline"] > 0 and figure["ratio"] > 0 and isinstance(figure["target_met"], bool)


def _fake_measurements(monkeypatch):
    """Replaces the measuring functions of the sections written beside the suite with canned results of the
    same shape, so that their figures can be checked against the suite's schema in a second."""
    import decoding_speed
    import precision_compile
    import serving_xla

    sentences = {"python_loop": 10.0, "in_graph_greedy": 20.0, "xla_greedy": 40.0, "in_graph_beam": 8.0,
                 "xla_beam": 16.0}
    batch = {"generated_steps": 12, "sentences_per_second": sentences, "speedup_in_graph_vs_python_loop": 2.0,
             "speedup_xla_vs_python_loop": 4.0, "speedup_in_graph_vs_python_loop_dropping": 1.5,
             "beam4_throughput_vs_greedy": 0.4,
             "xla_beam4_throughput_vs_xla_greedy": 0.4, "xla_tokens_equal_in_graph": True}
    monkeypatch.setattr(decoding_speed, "measure", lambda *arguments, **keywords: {
        "run_dir": "fake", "batches": {"1": batch, "64": batch}})
    monkeypatch.setattr(precision_compile, "measure", lambda *arguments, **keywords: {
        "step_ms": {"float32": 100.0, "xla": 400.0, "mixed_bfloat16": 120.0},
        "speed_vs_float32": {"xla": 0.25, "mixed_bfloat16": 0.83}, "batch": [64, 256], "model": "fake",
        "method": "fake"})
    monkeypatch.setattr(serving_xla, "compiled_exports", lambda directory: {"imdb": directory, "tiny": directory})
    monkeypatch.setattr(serving_xla, "measure", lambda *arguments, **keywords: {
        "batch1_p50_ms": {"plain": 1.0, "xla": 0.4}, "batch1_p99_ms": {"plain": 2.0, "xla": 1.0},
        "batch1_p50_xla_vs_plain": 0.4, "batch64_examples_per_second": {"plain": 100.0, "xla": 150.0},
        "batch64_throughput_xla_vs_plain": 1.5})
    return {"decoding": decoding_speed, "precision_compile": precision_compile, "serving_xla": serving_xla}


def test_figures_of_the_decoding_precision_and_serving_sections_fit_the_suite_schema(monkeypatch):
    modules = _fake_measurements(monkeypatch)
    for section, module in modules.items():
        figures = module.figures(quick=True)
        assert figures, section
        for figure in figures:
            line = speed_suite.complete_figure(figure, section, quick=True, machine="test machine")
            assert set(SCHEMA) <= set(line)
            json.dumps(line)  # one JSON line each
    decoding = modules["decoding"].figures(quick=True)
    greedy = [line for line in decoding if line["figure"] == "decoding_in_graph_greedy_vs_python_loop"]
    assert [line["ratio"] for line in greedy] == [2.0, 2.0] and all(line["target_met"] for line in greedy)
    serving = {line["figure"]: line for line in modules["serving_xla"].figures(quick=True)}
    assert set(serving) == {"serving_batch1_p50_xla_vs_plain", "serving_batch64_throughput_xla_vs_plain",
                            "serving_batch1_p50_xla_vs_plain_tiny_model",
                            "serving_batch64_throughput_xla_vs_plain_tiny_model"}
    # The target applies to the model a user ships (IMDB size); the tiny model's ratio is reported beside it.
    assert serving["serving_batch1_p50_xla_vs_plain"]["target_met"] is False  # the canned 0.4 misses <= 0.3
    assert serving["serving_batch1_p50_xla_vs_plain_tiny_model"]["target"] is None


def test_machine_line_names_the_vector_units(tmp_path):
    import harness

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f amx_tile\n")
    assert harness.cpu_vector_units(str(cpuinfo)) == "AVX-512, AMX"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 fma\n")
    assert harness.cpu_vector_units(str(cpuinfo)) == "AVX2"
    assert harness.cpu_vector_units(str(tmp_path / "missing")) == ""
