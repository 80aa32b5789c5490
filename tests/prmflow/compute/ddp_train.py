"""``train_policy``'s ``run`` in a workspace, under ``torchrun`` or alone (the DDP tests launch it).

Usage: ``python ddp_train.py ROOT [STEPS_THIS_RUN]`` (the workspace's params.yaml).
"""

import os
import sys


def main(root: str, steps_this_run: str | None = None) -> None:
    import torch

    from prmflow.compute import distributed
    from prmflow.config import load_params
    from tasks.train_policy import run

    torch.set_num_threads(1)
    os.chdir(root)
    distributed.init()
    try:
        run(load_params("params.yaml"), max_steps_this_run=int(steps_this_run) if steps_this_run else None)
    finally:
        distributed.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
