"""Where the work runs: sampling in shards on this process or on Ray actors (``compute.backend``),
and training on several processes under ``torchrun`` (DDP)."""
