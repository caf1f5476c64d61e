"""Command line: `python -m pipeline train | evaluate | export | predict | serve | serving-config | diagnose`.

This is the only place that parses arguments; each verb calls an importable function. TensorFlow is
imported only after the config has been read and checked, so bad input fails in a fraction of a second.
Errors print one `error: ...` line; set PIPELINE_DEBUG=1 to get the traceback instead.
"""

import argparse
import glob
import json
import logging
import os
import sys
import typing

import pipeline
from pipeline import config as config_lib
from pipeline import native_logs

logger = logging.getLogger("pipeline")

SERVE_PROGRAM = "python -m pipeline serve"

_DEFAULT_PROFILE_STEPS = (10, 15)  # past the first steps, which trace the graph


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_program_name(), description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {pipeline.__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    train = verbs.add_parser("train", help="train, evaluate and export a run from YAML config files",
                             description="Train (resuming from the run directory's last checkpoint), "
                             "evaluate, and export when export.on_train_end is true. Prints the run directory.")
    train.add_argument("configs", nargs="+", metavar="CONFIG",
                       help="YAML files, merged left to right; a name that is not a file is a shipped config "
                       "(quickstart, tiny/sentiment, ...)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                       help="override one key, e.g. --set train.epochs=3 (value parsed as YAML); repeatable")
    train.add_argument("--profile", nargs="?", const=_DEFAULT_PROFILE_STEPS, type=_profile_steps,
                       metavar="FIRST,LAST",
                       help="write a TensorBoard profiler trace of training steps FIRST to LAST (1-based, "
                       f"default {_DEFAULT_PROFILE_STEPS[0]},{_DEFAULT_PROFILE_STEPS[1]}) into RUN_DIR/profile/")

    evaluate = verbs.add_parser("evaluate", help="evaluate a trained run and update its metrics.json")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--split", action="append", dest="splits", metavar="NAME",
                          help="split to evaluate (validation, test, train); repeatable; default: held-out")
    evaluate.add_argument("--data", metavar="FILE",
                          help="evaluate this labelled file instead (a format the task reads for data.test); "
                          "its metrics join metrics.json as file:FILE")
    evaluate.add_argument("--predictions", metavar="FILE",
                          help="write every evaluated example's prediction beside its reference (JSON Lines)")

    export = verbs.add_parser("export", help="export a trained run as a TF Serving SavedModel")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--version", type=int, help="integer version (default: the next free one)")

    predict = verbs.add_parser("predict", help="run an export on raw inputs, one JSON object per input",
                               description="PATH is an export (exports/NAME/VERSION), a model base path "
                               "(exports/NAME, latest version) or a run directory (its latest export). "
                               "Inputs are texts, or image files for exports that take image_bytes; with "
                               "none, stdin is read one input per line.")
    predict.add_argument("path", metavar="PATH")
    predict.add_argument("inputs", nargs="*", metavar="INPUT")
    predict.add_argument("--signature", default="serving_default",
                         help="signature to call (translation and language-model exports also have greedy, beam, sample)")
    predict.add_argument("--temperature", type=float, default=1.0,
                         help="for signatures with a temperature input (sample); default 1.0")
    predict.add_argument("--batch-size", type=_positive_int, default=64, dest="batch_size",
                         help="inputs per model call (default 64); stdin lines are answered as they arrive")

    verbs.add_parser("serve", add_help=False, help="TF-Serving-compatible REST and gRPC server over exports "
                     "(tensorflow_model_server's flags; `serve --help` lists them)")
    serving_config = verbs.add_parser("serving-config", help="print a models.config serving every model of an "
                                      "exports folder", description="Writes TF Serving's model_config_list text "
                                      "proto for every exports/<model_name>/ folder holding versions, e.g. "
                                      "`python -m pipeline serving-config exports/ > serving/models.config`.")
    serving_config.add_argument("exports_dir", metavar="EXPORTS_DIR")
    serving_config.add_argument("--base_path_prefix", default="/models",
                                help="where the server sees EXPORTS_DIR (default /models, the Docker image's "
                                "mount; give the folder itself for serving/server.py)")
    _add_diagnose_parser(verbs)
    for name, verb_parser in verbs.choices.items():
        if name != "serve":
            verb_parser.add_argument("--verbose", action="store_true",
                                     help="also show TensorFlow's native logging (as PIPELINE_DEBUG=1 does)")
    return parser


def _program_name() -> str:
    """`pipeline` when run as the installed command, else `python -m pipeline`."""
    return "pipeline" if os.path.basename(sys.argv[0]) == "pipeline" else "python -m pipeline"


def _profile_steps(text: str) -> tuple[int, int]:
    """Parses `--profile FIRST,LAST` (or one step N, meaning N,N)."""
    parts = text.split(",")
    try:
        steps = tuple(int(part) for part in parts)
    except ValueError:
        steps = ()
    if len(steps) == 1:
        steps = steps * 2
    if len(steps) != 2 or not 1 <= steps[0] <= steps[1]:
        raise argparse.ArgumentTypeError(f"expected FIRST,LAST training steps with 1 <= FIRST <= LAST, got {text!r}")
    return steps


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_diagnose_parser(verbs) -> None:
    """`diagnose <experiment>`: the RNN-internals experiments of pipeline.diagnostics, each writing JSON (+ PNG)."""
    diagnose = verbs.add_parser("diagnose", help="RNN internals: vanishing gradients, long-range memory, clipping, "
                                "a hand-wired RNN (PNG + JSON)",
                                description="Runs one experiment of pipeline.diagnostics and writes its JSON "
                                "(and PNG plot) to --output; prints a summary and the paths.")
    experiments = diagnose.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    cells = {"nargs": "+", "choices": ["simple_rnn", "lstm", "gru"], "default": ["simple_rnn", "lstm", "gru"],
             "help": "cells to compare (default: all three)"}

    def add(name, help_text):
        parser = experiments.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("--output", default=os.path.join("runs", "diagnostics"),
                            help="folder for the JSON and PNG files (default: runs/diagnostics)")
        parser.add_argument("--seed", type=int, default=0, help="seed of weights and data (default 0)")
        return parser

    vanishing = add("vanishing-gradients", "norm of dL_T/dh_t for t = 1..T, SimpleRNN vs LSTM vs GRU, "
                    "and the SimpleRNN recurrent matrix's spectral radius")
    vanishing.add_argument("--runs", nargs="+", default=[], metavar="RUN_DIR",
                           help="trained language-model runs to compare (default: fresh models of --cells)")
    vanishing.add_argument("--cells", **cells)
    vanishing.add_argument("--steps", type=_positive_int, default=50, help="T (default 50)")
    vanishing.add_argument("--batch-size", type=_positive_int, default=16, help="sequences averaged (default 16)")
    vanishing.add_argument("--units", type=_positive_int, default=32, help="fresh models: units (default 32)")
    vanishing.add_argument("--input-scale", type=_positive_float, default=1.0,
                           help="fresh models: standard deviation of the embedding entries (default 1.0)")

    long_range = add("long-range", "accuracy at recalling the first token after N distractors, per cell")
    long_range.add_argument("--cells", **cells)
    long_range.add_argument("--distractors", nargs="+", type=_positive_int, default=[5, 20, 50], metavar="N",
                            help="values of N (default 5 20 50)")
    long_range.add_argument("--units", type=_positive_int, default=16, help="units (default 16)")
    long_range.add_argument("--train-steps", type=_positive_int, default=120,
                            help="Adam steps per model (default 120)")

    clipping = add("clipping", "global gradient norm per step with and without clipnorm on an exploding RNN")
    clipping.add_argument("--clipnorm", type=_positive_float, default=1.0, help="clipping norm (default 1.0)")
    clipping.add_argument("--steps", type=_positive_int, default=150, help="SGD steps (default 150)")
    clipping.add_argument("--gain", type=_positive_float, default=1.05,
                          help="recurrent matrix = orthogonal x gain (default 1.05)")

    hand_wired = add("hand-wired", "a SimpleRNN with hand-set weights that outputs 1 exactly when the last "
                     "two inputs were 1, checked on every binary sequence")
    hand_wired.add_argument("--max-length", type=_positive_int, default=8,
                            help="check all sequences up to this length (default 8)")


def main(argv: typing.Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return _serve(argv[1:])
    arguments = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    with native_logs.filtered(native_logs.wanted(arguments.verbose)):
        return _run_reporting_errors(arguments)


def _run_reporting_errors(arguments: argparse.Namespace) -> int:
    """Runs a verb; an error is one `error: ...` line (the traceback only with PIPELINE_DEBUG=1)."""
    try:
        return _run(arguments)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130
    except Exception as error:  # pylint: disable=broad-except
        if os.environ.get(native_logs.DEBUG_VARIABLE):
            raise
        expected = isinstance(error, (config_lib.ConfigError, ValueError, FileNotFoundError, RuntimeError))
        print(f"error: {error}" if expected else
              f"error: {type(error).__name__}: {error} (set PIPELINE_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


def _serve(argv: list[str]) -> int:
    """`serve`: --help and flag errors answer before TensorFlow loads; the server then parses the flags."""
    from serving import flags as serving_flags
    serving_flags.build_parser(prog=SERVE_PROGRAM).parse_args(argv)
    with native_logs.filtered(native_logs.wanted(verbose=False)):
        from serving import server
        return server.main(argv, prog=SERVE_PROGRAM)


def _run(arguments: argparse.Namespace) -> int:
    if arguments.verb == "train":
        config = config_lib.load_config(arguments.configs, arguments.overrides)
        _require_input_paths(config)
        return _train(config, arguments.profile)
    if arguments.verb == "evaluate":
        _require_run_dir(arguments.run_dir)
        _require_input_paths(config_lib.load_config([os.path.join(arguments.run_dir, "config.yaml")]))
        if arguments.data is not None and not _matches_files(arguments.data):
            raise FileNotFoundError(f"{arguments.data}: no such file (evaluate --data)")
        from pipeline import evaluation
        results = evaluation.evaluate(arguments.run_dir, arguments.splits, data=arguments.data,
                                      predictions=arguments.predictions)
        print(json.dumps(results, indent=2))
        return 0
    if arguments.verb == "export":
        _require_run_dir(arguments.run_dir)
        from pipeline import export
        print(export.export_run(arguments.run_dir, version=arguments.version))
        return 0
    if arguments.verb == "serving-config":
        from serving import model_config
        print(model_config.config_text_for_exports(arguments.exports_dir, arguments.base_path_prefix), end="")
        return 0
    if arguments.verb == "diagnose":
        return _diagnose(arguments)
    return _predict(arguments)


def _diagnose(arguments: argparse.Namespace) -> int:
    for run_dir in getattr(arguments, "runs", []):
        _require_run_dir(run_dir)
    from pipeline.diagnostics import clipping, hand_wired, long_range, vanishing_gradients
    output, seed = arguments.output, arguments.seed
    if arguments.experiment == "vanishing-gradients":
        report = vanishing_gradients.run(output, runs=arguments.runs, cells=arguments.cells, steps=arguments.steps,
                                         batch_size=arguments.batch_size, units=arguments.units,
                                         input_scale=arguments.input_scale, seed=seed)
        summary = {name: {"first_to_last_ratio": entry["first_to_last_ratio"],
                          **entry.get("recurrent_matrix", {})} for name, entry in report["results"].items()}
    elif arguments.experiment == "long-range":
        report = long_range.run(output, cells=arguments.cells, distractors=arguments.distractors,
                                units=arguments.units, train_steps=arguments.train_steps, seed=seed)
        summary = {"distractors": arguments.distractors, "accuracy": report["results"]}
    elif arguments.experiment == "clipping":
        report = clipping.run(output, clipnorm=arguments.clipnorm, steps=arguments.steps, gain=arguments.gain,
                              seed=seed)
        summary = {name: {"diverged_at": record["diverged_at"], "first_loss": record["loss"][0],
                          "last_loss": record["loss"][-1]} for name, record in report["results"].items()}
    else:
        report = hand_wired.run(output, max_length=arguments.max_length)
        summary = {key: report["results"][key] for key in ("sequences", "steps", "wrong_steps", "max_abs_error")}
    print(json.dumps(summary))
    for key in ("json", "png"):
        if key in report:
            print(report[key])
    return 0


def _matches_files(path: str) -> bool:
    """Whether a data path names files: a file, a glob pattern, or aligned files (`{language}`)."""
    return os.path.exists(path) or bool(glob.glob(path.replace(config_lib.LANGUAGE_PLACEHOLDER, "*")))


def _require_input_paths(config: config_lib.RunConfig) -> None:
    """Fails fast, before TensorFlow loads and before anything is written, when an input file is missing."""
    for key, paths in config.input_paths().items():
        for path in paths:
            if glob.has_magic(path):
                if not glob.glob(path):
                    raise FileNotFoundError(f"{key}: no file matches {path!r}")
            elif not os.path.exists(path):
                raise FileNotFoundError(f"{key}: {path}: no such file or directory")


def _require_run_dir(path: str) -> None:
    """Fails fast, before TensorFlow loads, when PATH is not a run directory."""
    if not os.path.exists(os.path.join(path, "config.yaml")):
        raise FileNotFoundError(f"{path}: not a run directory (no config.yaml); train first")


def _train(config: config_lib.RunConfig, profile_steps: typing.Optional[tuple[int, int]] = None) -> int:
    from pipeline import distribution
    from pipeline import predict
    from pipeline import run_files
    from pipeline import run_state
    from pipeline import training
    strategy = distribution.create_strategy(config.runtime)  # before any other TensorFlow work
    complete = _is_complete(run_state.load(config.run_dir), config)
    run_dir = training.train(config, strategy, profile_steps=profile_steps)
    try:
        if config.export.on_train_end and distribution.writes_files(config.runtime):  # one export per run
            path = _export_once(run_dir, config)
            if path:
                samples = [item for item in run_files.load_sample_inputs(run_dir) if item][-4:]
                inputs = [run_files.decode_sample_input(item) for item in samples]
                for row in predict.predict_rows(predict.load_export(path), inputs):
                    logger.info("prediction: %s", json.dumps(row, ensure_ascii=False))
    finally:  # even when the export fails, so that the other workers do not wait for the chief forever
        distribution.wait_for_all_workers(strategy)
    if distribution.writes_files(config.runtime):
        _report(run_dir, config, complete)
    print(run_dir)
    return 0


def _is_complete(state, config: config_lib.RunConfig) -> bool:
    """Whether `train` has nothing left to do: trained, evaluated, and exported if `export.on_train_end`."""
    return (state.training_finished(config.train.epochs, config.train.early_stopping_patience)
            and state.evaluated() and (state.exported() or not config.export.on_train_end))


def _export_once(run_dir: str, config: config_lib.RunConfig) -> typing.Optional[str]:
    """Exports the run after training unless this training's export exists; returns the new export's path.

    The version is recorded before the export starts: an export interrupted by a kill is finished under
    the same version by the next `train`, never duplicated under a new one.
    """
    from pipeline import export
    from pipeline import run_state
    state = run_state.load(run_dir)
    if state.exported():
        return None
    base_path = os.path.join(config.export.dir, config.model_name)
    version = state.claimed_export_version()
    if version is not None and os.path.isdir(os.path.join(base_path, str(version))):
        path = os.path.join(base_path, str(version))  # complete (renamed into place), but not yet recorded
    else:
        if version is None:
            version = export.next_version(base_path)
            run_state.update(run_dir, export_epochs=state.epochs_done, export_version=version, export_path=None)
        path = export.export_run(run_dir, version=version)
    run_state.update(run_dir, export_path=path)
    return path


def _report(run_dir: str, config: config_lib.RunConfig, was_complete: bool) -> None:
    """Logs what the run holds: epochs, best epoch and value, metrics per split, export."""
    from pipeline import run_state
    metrics_path = os.path.join(run_dir, "metrics.json")
    metrics = {}
    if os.path.exists(metrics_path):
        with open(metrics_path, encoding="utf-8") as stream:
            metrics = json.load(stream)
    if was_complete:
        logger.info("%s is complete: nothing trained, evaluated or exported (raise train.epochs to train further; "
                    "`python -m pipeline export %s` makes a new export version)", run_dir, run_dir)
    for line in run_state.describe(run_state.load(run_dir), config.train.epochs,
                                   config.train.early_stopping_patience, metrics):
        logger.info("%s", line)


def _predict(arguments: argparse.Namespace) -> int:
    from pipeline import predict
    options = {"signature": arguments.signature, "temperature": arguments.temperature,
               "batch_size": arguments.batch_size}
    if arguments.inputs:
        rows = predict.predict(arguments.path, arguments.inputs, **options)
    else:
        rows = predict.predict_lines(arguments.path, sys.stdin.buffer, **options)
    answered = failed = 0
    for row in rows:
        print(json.dumps(row, ensure_ascii=False), flush=True)
        answered += 1
        failed += "error" in row
    if failed:
        print(f"error: {failed} of {answered} inputs failed; their rows say why", file=sys.stderr)
        return 1
    return 0
