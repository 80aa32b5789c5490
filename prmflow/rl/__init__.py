"""The RL loop (GRPO family): rollouts to rewards and per-token advantages (via ``reward/``),
the clipped policy loss, batches and checkpoints."""
