"""Packs NAS-Bench-201's test accuracies (../shared/data/nb201/nb201-test-accuracy.csv) into the
compact table nasp-tui carries (data/nb201-test-accuracy.bin; src/nb201.rs reads it).

Layout, little-endian, one 14-byte record per cell in the benchmark's index order (0..15,624):
  u16  the cell's op code: sum over the six edges e (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) of
       op(e) * 5**e, op numbered none 0, skip_connect 1, nor_conv_1x1 2, nor_conv_3x3 3,
       avg_pool_3x3 4
  u32  CIFAR-10 test accuracy (%) x 10,000
  u32  CIFAR-100 test accuracy (%) x 10,000
  u32  ImageNet16-120 test accuracy (%) x 10,000
The CSV holds 4 decimals, so the table is exact; a test in src/nb201.rs compares every row.

usage: python3 scripts/nb201-pack.py [CSV] [OUT]
"""
import csv
import re
import struct
import sys

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


def code(arch):
    ops = {}
    for node, group in enumerate(arch.split("+"), start=1):
        for op, src in re.findall(r"([a-z_0-9]+)~(\d+)", group):
            ops[(node, int(src))] = OPS.index(op)
    return sum(ops[e] * 5 ** i for i, e in enumerate(EDGES))


def scaled(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 10000 + int((frac + "0000")[:4])


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/nb201/nb201-test-accuracy.csv"
    out = sys.argv[2] if len(sys.argv) > 2 else "data/nb201-test-accuracy.bin"
    rows = list(csv.DictReader(open(src)))
    assert [int(r["index"]) for r in rows] == list(range(15625)), "rows out of index order"
    with open(out, "wb") as f:
        for r in rows:
            f.write(struct.pack("<HIII", code(r["arch"]), scaled(r["cifar10_test"]),
                                scaled(r["cifar100_test"]), scaled(r["imagenet16_120_test"])))
    print(f"wrote {out}: {len(rows)} cells")


if __name__ == "__main__":
    main()
