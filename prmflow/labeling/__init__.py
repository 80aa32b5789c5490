"""Automatic step labels: pure estimators (Monte-Carlo, first-error search) and their quality
against an oracle, the registry of labelling methods, and the rollouts that feed them."""
