"""The notebook's LeNet-5 loop in PyTorch, for one epoch as a user waits for it (bench/train-cpu.ts times the whole
process): read Fashion-MNIST from the IDX files, Xavier-uniform init, SGD lr 0.9, batch 256 from a shuffling
DataLoader, then test accuracy on the 10,000 test images, as d2l's train_ch6 does each epoch. Prints one JSON line.

    python3 bench/torch_notebook_epoch.py --data /usr/share/datasets/fashion-mnist [--threads N] [--epochs 1]
"""
import argparse, gzip, json, os, time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def read_idx(folder, name, offset):
    path = os.path.join(folder, name)
    gz = os.path.exists(path + '.gz')
    with (gzip.open(path + '.gz') if gz else open(path, 'rb')) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(folder, prefix):
    images = read_idx(folder, f'{prefix}-images-idx3-ubyte', 16).reshape(-1, 1, 28, 28)
    labels = read_idx(folder, f'{prefix}-labels-idx1-ubyte', 8).astype(np.int64)
    return TensorDataset(torch.from_numpy(images.astype(np.float32) / 255), torch.from_numpy(labels))


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))


def init_cnn(module):
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data', required=True)
    parser.add_argument('--threads', type=int)
    parser.add_argument('--epochs', type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train, test = load(args.data, 'train'), load(args.data, 't10k')
    train_iter = DataLoader(train, batch_size=256, shuffle=True)
    test_iter = DataLoader(test, batch_size=256)
    torch.manual_seed(0)
    net = lenet5()
    net.apply(init_cnn)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(args.epochs):
        net.train()
        for x, y in train_iter:
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
        net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_iter:
                correct += int((net(x).argmax(1) == y).sum())
    print(json.dumps({'part': 'torch', 'figure': 'notebook-epoch', 'torch': torch.__version__,
                      'threads': torch.get_num_threads(), 'epochs': args.epochs,
                      'test_accuracy': correct / len(test), 'loop_seconds': time.perf_counter() - started}))


if __name__ == '__main__':
    main()
