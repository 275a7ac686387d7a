"""PyTorch eager baseline for the GPU benchmark: the same LeNet-5 and AlexNet as cnnx's model specs
(src/models/lenet5.ts, alexnet.ts), Xavier-uniform init and SGD as in the notebook, on the same MNIST files and
batch sizes as `device.mjs train`. Times steady-state training steps (host-to-device copy included, data
preparation and AlexNet's resize not, as in cnnx's benchmark) and prints one JSON line per model.

    python3 bench/gpu/torch_baseline.py --data dist/gpu/mnist [--quick]

On a CPU (bench/train-cpu.ts): --threads N sets PyTorch's intra-op threads (Debian's build starts with 1),
--only lenet5|alexnet and --steps/--warmup size the run.
"""
import argparse, json, os, time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def alexnet():
    return nn.Sequential(
        nn.Conv2d(1, 96, 11, stride=4, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 10))


def init_cnn(module):  # the notebook's init_cnn
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def mnist_train(folder):
    images = np.fromfile(os.path.join(folder, 'train-images-idx3-ubyte'), dtype=np.uint8, offset=16)
    labels = np.fromfile(os.path.join(folder, 'train-labels-idx1-ubyte'), dtype=np.uint8, offset=8)
    return images.reshape(-1, 1, 28, 28), labels.astype(np.int64)


def bench(name, make, lr, batch, side, steps, warmup, images, labels, device):
    torch.manual_seed(0)
    net = make().to(device)
    net.apply(init_cnn)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    order = np.random.default_rng(1).permutation(len(labels))
    batches = []
    for i in range(steps + warmup):
        take = order[i * batch:(i + 1) * batch]
        x = torch.from_numpy(images[take]).float() / 255
        if side != 28:
            x = F.interpolate(x, size=(side, side), mode='bilinear', align_corners=False)
        batches.append((x.contiguous(), torch.from_numpy(labels[take])))
    elapsed = 0.0
    for i, (x, y) in enumerate(batches):
        if device == 'cuda':
            torch.cuda.synchronize()
        started = time.perf_counter()
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # the step is done when its loss is on the host, as in cnnx's loop
        if i >= warmup:
            elapsed += time.perf_counter() - started
    return {'part': 'torch', 'figure': 'pytorch-eager-train', 'model': name, 'device': device,
            'gpu': torch.cuda.get_device_name(0) if device == 'cuda' else None, 'torch': torch.__version__,
            'threads': torch.get_num_threads(), 'batch_size': batch, 'steps': steps, 'examples_per_sec': steps * batch / elapsed,
            'ms_per_step': elapsed / steps * 1000}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data', required=True)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--threads', type=int)
    parser.add_argument('--only', choices=['lenet5', 'alexnet'])
    parser.add_argument('--steps', type=int)
    parser.add_argument('--warmup', type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    images, labels = mnist_train(args.data)
    runs = [('lenet5', lenet5, 0.9, 256, 28, 100, 10), ('alexnet', alexnet, 0.01, 128, 224, 20, 3)]
    if args.quick:
        runs = [('lenet5', lenet5, 0.9, 32, 28, 2, 1), ('alexnet', alexnet, 0.01, 2, 224, 1, 1)]
    runs = [r[:5] + (args.steps or r[5], args.warmup if args.warmup is not None else r[6])
            for r in runs if args.only in (None, r[0])]
    for run in runs:
        print(json.dumps(bench(*run, images, labels, device)), flush=True)


if __name__ == '__main__':
    main()
