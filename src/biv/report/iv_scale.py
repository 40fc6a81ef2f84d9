"""How far IV's training is from BIV's: per batch of K samples with weights w = 1/(σ² + ε), BIV
= Σ w e² / Σ w is IV = (1/K) Σ w e² times the scale c = K / Σ w, and so is its gradient. Adam's
update is unchanged by a constant factor on the gradients (up to its ε of 1e-8), so under Adam
the two differ only as far as c varies from batch to batch; under SGD, BIV also takes steps
1/mean(c) times shorter than IV's at one learning rate.

``python -m biv.report.iv_scale RESULTS EXPERIMENT LOSS [--epsilon E ...]``: per seed, the mean
and the coefficient of variation of c over the batches of one epoch, for the variances the runs
of (EXPERIMENT, LOSS) under RESULTS/runs trained on (drawn again by the training's own code), at
the loss's ε and at each E (a Markdown table).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor


def batch_scales(var: Tensor, epsilon: float, batch_size: int, drop_last: bool = False) -> Tensor:
    """c = K / Σ w, w = 1/(var + ε), of each batch of one epoch of ``var`` (N,) taken in order
    (the training's batches without shuffle; a last batch of fewer than ``batch_size`` samples
    unless ``drop_last``), float64."""
    w = 1.0 / (var.double() + epsilon)
    n = len(w) // batch_size * batch_size if drop_last else len(w)
    batches = w[:n].split(batch_size)
    return torch.stack([len(b) / b.sum() for b in batches])


def spread(scales: Tensor) -> dict[str, float]:
    """Mean, coefficient of variation (standard deviation over the mean, ddof 0), smallest and
    largest of the scales c."""
    mean = float(scales.mean())
    return {
        "mean": mean,
        "cv": float(scales.std(correction=0)) / mean,
        "min": float(scales.min()),
        "max": float(scales.max()),
    }


def run_specs(results: str | Path, experiment: str, loss: str) -> list:
    """The run specs of (experiment, loss) under ``results``/runs, by seed, their input files
    resolved against the folder that holds ``results`` (where the workflow ran)."""
    from biv.atomic import read_json
    from biv.config import FileRef, RunSpec
    from biv.report.tables import results_run_files

    root = Path(results)
    files = results_run_files(root, experiment, loss, "params.json")

    def resolved(ref: FileRef | None) -> FileRef | None:
        return None if ref is None else replace(ref, file=str(root.parent / ref.file))

    specs = [RunSpec.from_dict(read_json(file)) for file in files]
    return [replace(s, dataset=resolved(s.dataset), noise=resolved(s.noise)) for s in specs]


def main(argv: list[str] | None = None) -> None:
    import argparse

    from biv.train.run_data import load_run_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("experiment")
    parser.add_argument("loss", help="an iv or biv loss (its epsilon is the first column)")
    parser.add_argument("--epsilon", type=float, nargs="*", default=[])
    args = parser.parse_args(argv)
    specs = run_specs(args.results, args.experiment, args.loss)
    training = specs[0].training
    if training.shuffle:
        raise SystemExit("the runs shuffle their batches; this measures batches taken in order")
    epsilons = [specs[0].loss.params["epsilon"], *args.epsilon]
    data = load_run_data(specs, torch.device("cpu"), torch.float64)
    k = training.batch_size
    batches = len(batch_scales(data.var_train[0], epsilons[0], k, training.drop_last))
    print(
        f"{args.experiment}/{args.loss}: c = K / sum w over the {batches} batches of an epoch "
        f"(K = {k}), variances in model units"
    )
    print("| seed | " + " | ".join(f"eps {e:g}: mean c, CV" for e in epsilons) + " |")
    print("|---|" + "---|" * len(epsilons))
    for spec, var in zip(specs, data.var_train, strict=True):
        cells = []
        for eps in epsilons:
            s = spread(batch_scales(var, eps, k, training.drop_last))
            cells.append(f"{s['mean']:.4g}, {s['cv']:.2%}")
        print(f"| {spec.seed} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
