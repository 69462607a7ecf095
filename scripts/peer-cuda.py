"""Runs one of the PyTorch peers (../shared/bench/peer_step.py or peer_train.py) on the GPU.

The peers are written for the CPU: they build their network and data with PyTorch's default
device and time each step with time.perf_counter(). This wrapper makes CUDA the default device
and has every perf_counter() reading wait for the GPU first, so a peer's step times are device
times, not the time to queue the kernels. Nothing else of the peer changes.

usage: PEER=../shared/bench/peer_train.py python scripts/peer-cuda.py [the peer's arguments]
       nasp-tui bench ... --peer scripts/peer-cuda.py     (with PEER set as above)
"""
import os
import runpy
import sys
import time

import torch


def main():
    peer = os.environ.get("PEER")
    if not peer:
        raise SystemExit("peer-cuda: set PEER to the peer script (peer_step.py or peer_train.py)")
    if not torch.cuda.is_available():
        raise SystemExit("peer-cuda: PyTorch sees no CUDA device")
    torch.set_default_device("cuda")
    torch.backends.cudnn.benchmark = True  # as the DARTS reference scripts set it
    clock = time.perf_counter

    def synced_clock():
        torch.cuda.synchronize()
        return clock()

    time.perf_counter = synced_clock
    sys.argv = [peer] + sys.argv[1:]
    runpy.run_path(peer, run_name="__main__")


if __name__ == "__main__":
    main()
