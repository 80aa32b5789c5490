"""The process reward model: how steps are encoded, the learned head on a causal-LM backbone,
the scorers RL and evaluation call (learned, or training-free policy confidence), stepwise
training data, training, and the metrics that say how good a scorer is."""
