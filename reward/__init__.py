"""Pure reward math: answers, verifiers, reward terms, process aggregation, mixing, advantages.

Functions over numbers, texts, token pieces and tensors: no models, no files. Every reward term,
advantage estimator and step-credit rule is registered in :mod:`reward.registry`; importing this
package registers the built-in ones.
"""

from reward import advantages, length, outcome, process  # noqa: F401  (registers the built-ins)
from reward.registry import ADVANTAGES, REWARDS, STEP_CREDITS  # noqa: F401
