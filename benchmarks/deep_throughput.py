"""Benchmark: the nsclc_ici study's survival network throughput, bare loop vs studyrunner's training pipeline.

On one device, the same network, batch size, crop and precision (bf16 autocast on CUDA,
fp32 on CPU):

  (a) bare: forward + backward + Adam step of ``SurvivalNetwork`` with
      ``SurvivalIntervalLoss`` on random tensors already on the device (no augmentation,
      no shuffling); ``--warmup`` steps, then ``--steps`` timed steps between
      ``torch.cuda.synchronize()`` calls;
  (b) pipeline: ``studyrunner.deep.training.train_network`` on a random cohort of
      ``batch x steps`` volumes (moved to the device once by train_network), augmentation
      on, 2 epochs; samples/s of the 2nd epoch (the 1st warms up), validation excluded;
  (c) scoring: ``studyrunner.deep.scoring.score_volumes`` on the same cohort from host
      memory (numpy, as in a study run), cases/s after one warm-up call.

Usage:
  .venv/bin/python benchmarks/deep_throughput.py --device auto --batch-size 16 \
      --crop 82 82 78 --config full --steps 20 --out benchmarks/results/deep_throughput.json
  (CPU smoke run: --device cpu --config cpu --crop 24 24 24 --batch-size 4 --steps 3)

``--crop`` is (x, y, z) like ``size_voxels`` of ``studyrunner.deep.crops.tumour_crop``;
the tensors are [batch, 1, z, y, x]. Prints a Markdown table and, with ``--out``, writes
the numbers as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

# studyrunner comes from the venv (`make install` installs it in editable mode)
from studyrunner.deep.network import SurvivalNetwork
from studyrunner.deep.scoring import score_volumes
from studyrunner.deep.survival_loss import SurvivalIntervalLoss
from studyrunner.deep.training import TrainingSettings, train_network

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PROTOCOL = REPO / "protocols" / "nsclc_ici.yaml"


def protocol_settings(path: Path, profile: str):
    """Network config, crop (x, y, z), batch size and loss settings of a protocol's profile:
    ``full`` = the main settings (the nsclc_ici study's network), ``cpu`` = the ``cpu`` profile."""
    from studyrunner.deep.stage import network_config
    from studyrunner.protocol import load_protocol

    deep = load_protocol(path).protocol.predictors.deep_learning
    crop, network, training, _ = deep.profile("cpu" if profile == "cpu" else "cuda")
    return (network_config(network), tuple(crop.size_voxels), training.batch_size,
            deep.survival_loss.model_dump() if deep.survival_loss else {"gamma": 8.0, "margin": 0.25, "threshold": 0.0})


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _sync(dev: torch.device):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _random_labels(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random interval labels: an event in one interval, or censored with the last unknown."""
    targets = np.zeros((n, 3), np.float32)
    known = np.ones((n, 3), bool)
    event = rng.random(n) < 0.6
    interval = rng.integers(0, 3, n)
    targets[np.flatnonzero(event), interval[event]] = 1
    known[~event, 1:] = False
    return targets, known


def bare_throughput(model, loss, x, targets, known, dev, steps, warmup, memory_format) -> float:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = x.contiguous(memory_format=memory_format)
    elapsed = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(dev)
            t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = model(x).float()
            value = loss(out, targets, known)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
    _sync(dev)
    elapsed = time.perf_counter() - t0
    return steps * x.shape[0] / elapsed


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--protocol", type=Path, default=DEFAULT_PROTOCOL, help="network, crop and batch come from it")
    ap.add_argument("--config", choices=("full", "cpu"), default="full",
                    help="full: the protocol's main settings; cpu: its cpu profile")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the profile's batch size")
    ap.add_argument("--crop", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"),
                    help="default: the profile's crop")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (a); the cohort of (b), (c) is batch x steps")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")
    ap.add_argument("--channels-last", action="store_true", help="torch.channels_last_3d for (a) and (b)")
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="leave torch.backends.cudnn.benchmark off")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = ap.parse_args(argv)

    if args.device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    cudnn_benchmark = dev.type == "cuda" and not args.no_cudnn_benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark
    precision = "bf16" if dev.type == "cuda" else "fp32"
    memory_format = torch.channels_last_3d if args.channels_last else torch.contiguous_format
    config, profile_crop, profile_batch, loss_settings = protocol_settings(args.protocol, args.config)
    cx, cy, cz = args.crop or profile_crop
    b = args.batch_size or profile_batch
    n_cohort = b * args.steps

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    loss = SurvivalIntervalLoss(**loss_settings)
    model = SurvivalNetwork(config).to(dev, memory_format=memory_format)
    n_params = sum(p.numel() for p in model.parameters())

    # (a) bare loop on tensors already on the device
    x = torch.randn(b, 1, cz, cy, cx, device=dev)
    t, k = _random_labels(b, rng)
    bare = bare_throughput(model, loss, x, torch.from_numpy(t).to(dev), torch.from_numpy(k).to(dev), dev,
                           args.steps, args.warmup, memory_format)
    del x

    # (b) train_network on a random cohort (moved to the device once inside)
    cohort = rng.normal(size=(n_cohort, 1, cz, cy, cx)).astype(np.float32)
    t, k = _random_labels(n_cohort, rng)
    val_x = cohort[:b]
    settings = TrainingSettings(epochs=2, batch_size=b, learning_rate=1e-4, augment=True, max_shift=4,
                                seed=0, channels_last=args.channels_last)
    result = train_network(
        model, lambda out, tb: loss(out, tb["targets"], tb["known"]),
        cohort, {"targets": t, "known": k}, val_x, {"targets": t[:b], "known": k[:b]}, settings, str(dev),
    )
    last = result.history[-1]
    pipeline = n_cohort / last["seconds"]

    # (c) scoring from host memory
    score_volumes(model, cohort[:b], str(dev), batch_size=b)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    score_volumes(model, cohort, str(dev), batch_size=b)
    _sync(dev)
    scoring = n_cohort / (time.perf_counter() - t0)

    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": str(dev),
        "device_name": _device_name(dev),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "precision": precision,
        "channels_last_3d": bool(args.channels_last),
        "cudnn_benchmark": cudnn_benchmark,
        "batch_size": b,
        "crop_xyz": [cx, cy, cz],
        "config": args.config,
        "network": {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
                    "n_deep_features": config.n_deep_features, "parameters": n_params},
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "cohort": n_cohort,
        "bare_samples_per_second": bare,
        "pipeline_samples_per_second": pipeline,
        "pipeline_samples_per_second_all_epochs": result.train_samples_per_second,
        "pipeline_history": result.history,
        "scoring_cases_per_second": scoring,
        "ratio_pipeline_over_bare": pipeline / bare,
    }
    print(f"device {report['device_name']} ({dev}), torch {torch.__version__}, {precision}, batch {b}, "
          f"crop {cx}x{cy}x{cz}, config {args.config} ({config.n_deep_features} features, {n_params:,} parameters)")
    print("| measure | value |\n|---|---|")
    print(f"| (a) bare train step, samples/s | {bare:.2f} |")
    print(f"| (b) train_network epoch 2, samples/s | {pipeline:.2f} |")
    print(f"| (b) train_network both epochs, samples/s | {result.train_samples_per_second:.2f} |")
    print(f"| (c) score_volumes, cases/s | {scoring:.2f} |")
    print(f"| ratio (b) / (a) | {pipeline / bare:.3f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
