"""Evaluation: accuracy and reasoning-length metrics of a policy, the reward-hacking monitors,
the promotion gate, the champion, and summaries of ablations."""
