"""Captioning quality on the Flickr8k subset (test split), Show-and-Tell vs Show-Attend-and-Tell, and the
exact-match rate on synthetic:captioning.

    python benchmarks/captioning_flickr8k.py [--variants attention,show_and_tell,synthetic] [--set key=value ...]

`attention` trains `configs/captioning_flickr8k.yaml` as shipped (frozen SqueezeNet v1.1, features computed
once per image and cached; LSTM decoder attending over the 13x13 grid); `show_and_tell` the same with
`model.decoder=show_and_tell`; `synthetic` trains `configs/tiny/captioning.yaml` longer and on more images.
Each run goes through `training.train`; its evaluation reports BLEU-1..4 and CIDEr-D for beam search and
greedy decoding, and the nearest-neighbour baseline computed in the same evaluation (the consensus caption of
the most similar training image by pooled SqueezeNet features). Targets: CIDEr >= 1.3x the nearest-neighbour
baseline and beam >= greedy on Flickr8k; exact match >= 90% on synthetic:captioning. With the attention run
it also draws a PNG of test images, their captions and attention maps next to the JSON result.
"""

import argparse
import json
import os
import sys
import time

import harness

FLICKR_CONFIG = "configs/captioning_flickr8k.yaml"
SYNTHETIC_CONFIG = "configs/tiny/captioning.yaml"
FLICKR_DIR = os.path.join(os.path.dirname(harness.REPOSITORY_ROOT), "shared", "data", "flickr8k_subset")
VARIANTS = {
    "attention": (FLICKR_CONFIG, []),
    "show_and_tell": (FLICKR_CONFIG, ["model.decoder=show_and_tell"]),
    "synthetic": (SYNTHETIC_CONFIG, ["data.synthetic_examples=4000", "train.epochs=10"]),
}
SCORES = ("bleu_1", "bleu_4", "cider", "exact_match")


def train_variant(name: str, overrides: list[str], run_root: str) -> dict:
    from pipeline import config as config_lib
    from pipeline import run_files
    from pipeline import training

    config_path, variant_overrides = VARIANTS[name]
    run_dir = os.path.join(run_root, name)
    config = config_lib.load_config([config_path], variant_overrides + overrides + [
        f"runtime.run_dir={run_dir}", "export.on_train_end=false"])
    harness.progress(f"training variant {name!r} into {run_dir}")
    started = time.perf_counter()
    with harness.stdout_to_stderr():
        training.train(config)
    wall = time.perf_counter() - started
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        test = json.load(stream)["test"]
    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        epochs = sum(1 for _ in stream) - 1
    figure = {"beam": {key: harness.rounded(test[key], 4) for key in SCORES},
              "greedy": {key: harness.rounded(test[f"greedy_{key}"], 4) for key in SCORES},
              "nearest_neighbour": {key: harness.rounded(test[f"nearest_neighbour_{key}"], 4) for key in SCORES},
              "cider_ratio_to_nearest_neighbour": harness.rounded(test["cider_ratio_to_nearest_neighbour"], 3),
              "test_images": test["examples"], "epochs_run": epochs, "wall_seconds": harness.rounded(wall, 1),
              "samples": test["samples"][:3]}
    if name == "attention":
        figure["figure"] = draw_figure(config, run_dir)
    return figure


def draw_figure(config, run_dir: str) -> str:
    """Captions and attention maps of four test images, as a PNG beside the JSON result."""
    from pipeline import figures
    from pipeline import run_files
    from pipeline import tasks

    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    model = run_files.load_trained_model(run_dir)
    test_images = task.load_splits().splits["test"].images[:4]
    encoded = [open(path, "rb").read() for path in test_images]
    path = os.path.join(harness.RESULTS_DIR, "captioning_flickr8k_attention.png")
    os.makedirs(harness.RESULTS_DIR, exist_ok=True)
    return os.path.relpath(figures.render_caption_grid(task.caption_with_attention(model, preprocessing, encoded), path),
                           harness.REPOSITORY_ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="attention,show_and_tell,synthetic",
                        help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="override for the Flickr8k variants")
    parser.add_argument("--run-root", default="benchmarks/results/runs/captioning")
    arguments = parser.parse_args()
    names = arguments.variants.split(",")
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        sys.exit(f"error: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if any(VARIANTS[name][0] == FLICKR_CONFIG for name in names) and not os.path.isdir(FLICKR_DIR):
        sys.exit(f"error: {FLICKR_DIR} not found; the Flickr8k variants need ../shared/data/flickr8k_subset")
    harness.configure_logging()
    results = {name: train_variant(name, arguments.overrides if VARIANTS[name][0] == FLICKR_CONFIG else [],
                                   arguments.run_root) for name in names}
    flickr = {name: result for name, result in results.items() if name != "synthetic"}
    checks = {}
    if flickr:
        best = max(flickr, key=lambda name: flickr[name]["beam"]["cider"])
        checks["best_flickr_variant"] = best
        checks["cider_ratio_to_nearest_neighbour"] = flickr[best]["cider_ratio_to_nearest_neighbour"]
        checks["cider_at_least_1.3x_nearest_neighbour"] = flickr[best]["cider_ratio_to_nearest_neighbour"] >= 1.3
        checks["beam_at_least_greedy"] = {name: result["beam"]["cider"] >= result["greedy"]["cider"]
                                          for name, result in flickr.items()}
    if "synthetic" in results:
        checks["synthetic_exact_match_at_least_0.9"] = results["synthetic"]["beam"]["exact_match"] >= 0.9
    harness.report("captioning_flickr8k", {
        "variants": results,
        "baseline": "nearest neighbour: consensus caption of the most similar training image (pooled SqueezeNet "
                    "features), measured in the same evaluation",
        "scores": "BLEU-n and CIDEr-D x 100 (COCO definitions, lower-cased, punctuation removed); exact match 0-1",
        "target": "Flickr8k test CIDEr >= 1.3x the nearest-neighbour baseline, beam >= greedy; "
                  "synthetic:captioning exact match >= 0.9",
        **checks,
        "target_met": all(checks.get(key, True) for key in ("cider_at_least_1.3x_nearest_neighbour",
                                                             "synthetic_exact_match_at_least_0.9"))
                      and all(checks.get("beam_at_least_greedy", {}).values()),
    })


if __name__ == "__main__":
    main()
