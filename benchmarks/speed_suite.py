"""Speed suite: every speed figure of the project measured in one process, one JSON line per figure.

Usage (from the repository root):
    python benchmarks/speed_suite.py [--quick] [--only SECTION,SECTION...] [--list]

Each section is a module of benchmarks/ with a `figures(quick: bool) -> list[dict]` function; each figure has
at least `figure`, `value`, `baseline`, `ratio`, `target` and `target_met` (null where a figure has no
baseline or target, such as the matmul peak). The suite adds `section`, `machine` and `command` (the command
that reproduces that section alone), prints each figure as one JSON line on stdout as soon as its section ends,
and writes them all to benchmarks/results/speed_suite.jsonl or `--output` (rewritten by every run, line by line,
so a crash keeps the finished sections). A section that fails writes one line with `error` and the suite goes
on; the exit status is then 1. Progress goes to stderr.

`--quick` shrinks every section (tiny configs, synthetic data, fewer repetitions) to check that the suite
runs: its figures are not the ones to report.
"""

import argparse
import importlib
import json
import os
import sys
import time
import traceback

import harness

# (section name, module in benchmarks/ with `figures(quick)`), in running order: the peak first, it is the
# denominator of training_flops.
SECTIONS = [
    ("matmul_peak", "matmul_peak"),
    ("training_flops", "training_flops"),
    ("pipeline_vs_fit", "pipeline_overhead"),
    ("input_share", "input_share"),
    ("bucketing", "bucketing"),
    ("decoding", "decoding_speed"),
    ("precision_compile", "precision_compile"),
    ("serving_xla", "serving_xla"),
]
RESULTS_FILE = os.path.relpath(os.path.join(harness.RESULTS_DIR, "speed_suite.jsonl"), harness.REPOSITORY_ROOT)
REQUIRED_KEYS = ("figure", "value", "baseline", "ratio", "target", "target_met")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="shrink every section (a smoke run of a few minutes; figures not for reporting)")
    parser.add_argument("--only", type=section_list, metavar="SECTION,...",
                        help="run only these sections, comma-separated "
                        f"(of: {', '.join(name for name, _ in SECTIONS)})")
    parser.add_argument("--output", default=RESULTS_FILE,
                        help="JSON lines file, rewritten by this run (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="print the section names and exit")
    return parser.parse_args(argv)


def section_list(text: str) -> list[str]:
    """Parses `--only`: known section names, comma-separated, kept in the suite's running order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = [name for name, _ in SECTIONS]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown or [text]}; sections are {known}")
    return [name for name in known if name in names]


def section_command(name: str, quick: bool) -> str:
    """The command that reproduces one section alone."""
    return f"python benchmarks/speed_suite.py --only {name}" + (" --quick" if quick else "")


def complete_figure(figure: dict, section: str, quick: bool, machine: str) -> dict:
    """Checks a section's figure for the required keys and adds section, machine and command."""
    missing = [key for key in REQUIRED_KEYS if key not in figure]
    if missing:
        raise ValueError(f"section {section}: figure {figure.get('figure')!r} lacks {missing}")
    return {**figure, "section": section, "quick": quick, "machine": machine,
            "command": section_command(section, quick)}


def run_section(name: str, module_name: str, quick: bool, machine: str) -> list[dict]:
    """Runs one section; returns its completed figures, or one error line if it fails."""
    started = time.perf_counter()
    harness.progress(f"section {name} ({module_name}.figures, quick={quick})")
    try:
        module = importlib.import_module(module_name)
        with harness.stdout_to_stderr():
            figures = [complete_figure(figure, name, quick, machine) for figure in module.figures(quick)]
    except (Exception, SystemExit) as error:  # a section's sys.exit (missing data) must not end the suite
        traceback.print_exc(file=sys.stderr)
        message = str(error) or type(error).__name__
        return [{"figure": name, "section": name, "error": f"{type(error).__name__}: {message}", "quick": quick,
                 "machine": machine, "command": section_command(name, quick)}]
    harness.progress(f"section {name} done in {time.perf_counter() - started:.0f} s")
    return figures


def main(argv: list[str] | None = None) -> int:
    """Runs the chosen sections in order; returns the exit status (1 if a section failed)."""
    arguments = parse_arguments(argv)
    if arguments.list:
        print("\n".join(name for name, _ in SECTIONS))
        return 0
    harness.configure_logging()
    chosen = arguments.only or [name for name, _ in SECTIONS]
    machine = harness.machine_description()
    os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
    failed = []
    with open(arguments.output, "w", encoding="utf-8") as results:
        for name, module_name in SECTIONS:
            if name not in chosen:
                continue
            for figure in run_section(name, module_name, arguments.quick, machine):
                line = json.dumps(figure)
                print(line, flush=True)
                results.write(line + "\n")
                results.flush()
                if "error" in figure:
                    failed.append(name)
    harness.progress(f"results written to {arguments.output}")
    if failed:
        harness.progress(f"failed sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
