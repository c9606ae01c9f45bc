# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The training_cluster role's smoke test: one all_reduce over every process that torchrun starts.

Each rank contributes rank + 1; after the all_reduce every rank must hold n(n+1)/2. The script prints one JSON line
with what it found. It uses NCCL on the GPUs when CUDA is available, else gloo on the CPU.
"""

import datetime
import json
import os
import socket
import time

import torch
import torch.distributed as dist


def main():
    started = time.monotonic()
    cuda = torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=float(os.environ.get("SMOKE_TIMEOUT", "300"))))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    value = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    total = value.item()
    dist.destroy_process_group()
    result = {
        "rank": rank,
        "world_size": world,
        "sum": total,
        "backend": backend,
        "hostname": socket.gethostname(),
        "seconds": round(time.monotonic() - started, 3),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
