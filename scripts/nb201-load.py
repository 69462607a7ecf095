"""Loads weights that `nasp-tui train` wrote for a NAS-Bench-201 cell under the benchmark's names
(`weights-nb201.safetensors`) into the benchmark's own network, xautodl's
`TinyNetwork(C, N, genotype, classes)`, and evaluates it on CIFAR-10's test images.

    python scripts/nb201-load.py --load RUN/weights-nb201.safetensors --arch '|nor_conv_3x3~0|+|...|' \
        --C 16 --N 5 --data ../shared/data/cifar10 --eval 1000

Prints `accuracy=... logits0=...` (the first test image's logits). Fails, naming them, when
names differ (only `num_batches_tracked` may be missing). `scripts/setup.sh` installs xautodl
(`--no-deps`: the network needs torch alone) beside libtorch's torch.
"""
import argparse
import json
import struct

import torch
from xautodl.models.cell_infers.tiny_network import TinyNetwork
from xautodl.models.cell_searchs.genotypes import Structure

# CIFAR-10's normalisation, as nasp-tui's (and the benchmark's, to three decimals).
MEAN, STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)


def tensors(path):
    """A safetensors file as {name: tensor} (F32, F64, I64)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    kinds = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        data = bytearray(raw[8 + n + start:8 + n + end])
        out[name] = torch.frombuffer(data, dtype=kinds[spec["dtype"]]).reshape(spec["shape"])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--load", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--C", type=int, default=16)
    p.add_argument("--N", type=int, default=5)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--data", required=True)
    p.add_argument("--eval", type=int, default=1000)
    a = p.parse_args()
    net = TinyNetwork(a.C, a.N, Structure.str2structure(a.arch), a.classes)
    missing, unexpected = net.load_state_dict(tensors(a.load), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"nb201-load: names differ: missing {missing[:5]} ({len(missing)}), "
                         f"unexpected {unexpected[:5]} ({len(unexpected)})")
    n = a.eval
    raw = torch.frombuffer(bytearray(open(f"{a.data}/test_batch.bin", "rb").read(3073 * n)),
                           dtype=torch.uint8).view(n, 3073)
    y, x = raw[:, 0].long(), raw[:, 1:].float().view(n, 3, 32, 32) / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(x[i:i + 250])[1] for i in range(0, n, 250)])
    acc = (logits.argmax(1) == y).float().mean().item()
    print(f"images={n} accuracy={acc:.4f} logits0={','.join(f'{v:.5f}' for v in logits[0].tolist())}")


if __name__ == "__main__":
    main()
