"""A training stage's ``run`` in a workspace, under ``torchrun`` or alone (the DDP tests launch it).

Usage: ``python ddp_train.py STAGE ROOT [STEPS_THIS_RUN]`` (``train_policy`` or ``train_prm``;
the workspace's params.yaml; ``STEPS_THIS_RUN``: ``train_policy`` stops there, checkpointed).
"""

import importlib
import os
import sys


def main(stage: str, root: str, steps_this_run: str | None = None) -> None:
    import torch

    from prmflow.compute import distributed
    from prmflow.config import load_params

    torch.set_num_threads(1)
    os.chdir(root)
    distributed.init()
    run = importlib.import_module(f"tasks.{stage}").run
    kw = {"max_steps_this_run": int(steps_this_run)} if steps_this_run else {}
    try:
        run(load_params("params.yaml"), **kw)
    finally:
        distributed.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
