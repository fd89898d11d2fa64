"""Training throughput of convforge's engine against a minimal hand-written PyTorch loop.

Both train the same model with the same batches (convforge's in-memory CIFAR-10
loader with pad-and-crop and flip), batch size, optimiser (SGD, Nesterov, lr 0.05)
and memory format, in the same process. The engine's figure is the images/s it
records in metrics.csv (training loop only); the hand loop is timed the same way.
Prints both and their ratio (engine / hand; 1.0 means no overhead).

    python benchmarks/train_throughput.py --data-root ../shared/data/cifar10 [--images 6400] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

import convforge
from convforge.data import Augment, TensorLoader, load_dataset
from convforge.tables import text_table

MODELS = ["simplenet_cifar_310k", "resnet20"]


def hand_loop(name: str, data, batch_size: int, seed: int) -> float:
    """Images/s of the plainest correct loop over the same batches."""
    torch.manual_seed(seed)
    model = convforge.create_model(name, num_classes=10).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = TensorLoader(data, batch_size, train=True, augment=Augment(4, True), seed=seed, channels_last=True)
    seen, start = 0, time.perf_counter()
    for images, labels in loader:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(labels)
    return seen / (time.perf_counter() - start)


def engine(name: str, data_root: str, images: int, batch_size: int, seed: int) -> float:
    """Images/s that convforge.train records for one epoch on the same subset."""
    with tempfile.TemporaryDirectory() as project:
        result = convforge.train(name, "cifar10", data_root=data_root, train_subset=images, val_subset=256,
                                 epochs=1, batch_size=batch_size, opt="sgd", lr=0.05, sched="constant",
                                 crop_padding=4, flip=True, seed=seed, project=project, progress=False)  # fmt: skip
    return result.metrics[0]["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding CIFAR-10 (python batches or the archive)")
    parser.add_argument("--images", type=int, default=6400, help="training images per measurement")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="alternating measurements per model (median kept)")
    args = parser.parse_args()
    data = load_dataset("cifar10", "train", root=args.data_root).subset(args.images, seed=0)

    rows = []
    for name in MODELS:
        ours, theirs = [], []
        for repeat in range(args.repeats):  # alternate, so drift on a shared machine hits both
            theirs.append(hand_loop(name, data, args.batch, seed=repeat))
            ours.append(engine(name, args.data_root, args.images, args.batch, seed=repeat))
        o, t = statistics.median(ours), statistics.median(theirs)
        rows.append((name, f"{t:.0f}", f"{o:.0f}", f"{o / t:.3f}"))
        print(f"done {name}: hand {theirs}, engine {ours}", flush=True)
    print(f"\nCIFAR-10, {args.images} images per run, batch {args.batch}, channels_last, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}\n")  # fmt: skip
    print(text_table(["model", "hand loop img/s", "engine img/s", "engine / hand"], rows))


if __name__ == "__main__":
    main()
