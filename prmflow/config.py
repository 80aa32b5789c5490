"""Typed configuration, loaded once from ``params.yaml``.

Every stage reads its own section. An unknown key, a missing section, a wrong type (strictly:
``true`` is not an integer, ``"500"`` not a number) or a non-finite number (``.nan``, ``.inf``)
fails at start-up with the dotted key in the message (``params.yaml: rl.steps: Input should be
a valid integer``). Overrides use DVC's ``-S key=value`` syntax, values parsed as YAML
(``-S rl.steps=5`` is the integer 5).

The code defaults of every field equal the shipped ``params.yaml`` (a test checks it), so
``Params()`` is the shipped configuration, and a key left out of a section means what the
shipped file says.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reward.parse import SolutionFormat

PARAMS_FILE = "params.yaml"

DataSource = Literal["synthetic", "gsm8k", "jsonl", "parquet", "hf"]
OnConflict = Literal["wait", "skip", "fail"]
"""What a run does when another one holds the workspace (``lifecycle.on_conflict``)."""


class ConfigError(ValueError):
    """A params file (or override) that does not fit the schema."""


class _Section(BaseModel):
    # strict: YAML already types its values, so a coercion (true -> 1, "5" -> 5) hides a mistake
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


class TinyModelConfig(_Section):
    """Shape of the tiny Llama built from a config when no model id/path is given."""

    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(4, gt=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(384, gt=0)
    max_position_embeddings: int = Field(192, gt=0)


class ModelConfig(_Section):
    """The policy model: the embedded tiny default or any Hugging Face causal LM."""

    name_or_path: str | None = None
    """HF model id or local path; ``None`` builds the tiny default (tokenizer included)."""
    revision: str | None = None
    """Revision of an HF model id (branch, tag or commit); ``None``: the default branch."""
    prompt_template: str = "{question}\n"
    """How a question becomes a prompt when no chat template is used (``chat_template``); the
    solution follows it, one step per line."""
    chat_template: Literal["auto", "none", "required"] = "auto"
    """``auto``: prompts are the tokenizer's chat template (one user message, the question;
    generation prompt added) when the tokenizer has one, else ``prompt_template``; ``none``:
    always ``prompt_template``; ``required``: the chat template, and a tokenizer without one
    fails before any work. The tiny default's tokenizer has none."""
    system_prompt: str | None = None
    """A system message put before the question when the chat template is used (e.g. "Solve
    step by step; end with 'The answer is N.'"); ``None``: none (the template's own default)."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """``auto``: bfloat16 on a GPU that supports it, float32 on CPU."""
    cpu_attention: str | None = "eager"
    """On CPU, the attention kernel a policy is loaded with (:func:`prmflow.lm.models.load_causal_lm`:
    sampling in every stage, and the RL update); a transformers ``attn_implementation``, ``None``:
    the model's own (sdpa for most). Saved models keep their own; GPUs always use it. Measured on
    the tiny model, 2 threads: 16x8 samples in ~85% of sdpa's time, and with bf16 autocast
    (``rl.cpu_bf16``) an RL update in 53%."""
    tiny: TinyModelConfig = TinyModelConfig()


class ColumnMapping(_Section):
    """Which source columns hold the question and the answer (steps + final answer)."""

    question: str = "question"
    answer: str = "answer"
    final_answer: str | None = None
    """Optional column with the final answer alone, when ``answer`` holds only steps."""


class DataConfig(_Section):
    """Where problems come from and which are kept (stage ``curate``)."""

    source: DataSource = "synthetic"
    path: str | None = None
    """Train file for ``gsm8k``/``jsonl``/``parquet``."""
    eval_path: str | None = None
    """Eval file for file sources; when absent the eval split is carved from ``path``."""
    hf_name: str | None = None
    hf_config: str | None = None
    hf_revision: str | None = None
    """Dataset revision (branch, tag or commit); ``None``: the default branch. The ``inputs``
    stage records the commit it resolves to, so a new dataset revision re-runs curate."""
    hf_train_split: str = "train"
    hf_eval_split: str = "test"
    columns: ColumnMapping = ColumnMapping()
    num_train: int = Field(4000, ge=0)
    num_eval: int = Field(400, ge=1)
    min_steps: int = Field(2, ge=1)
    max_steps: int = Field(8, ge=1)
    """Kept difficulty range, in reasoning steps (chain length for the synthetic task)."""
    modulus: int = Field(100, ge=10)
    """Synthetic task: all values live in ``[0, modulus)``."""
    task: Literal["chain", "dag"] = "chain"
    """Synthetic task family (:mod:`prmflow.problems.synthetic`): ``chain``, or ``dag`` (digits in
    variables to look up, distractor assignments the target does not need)."""
    max_distractors: int = Field(3, ge=0, le=6)
    """``dag``: each question has 0..max_distractors assignments its target does not use."""
    literal_var_prob: float = Field(0.4, ge=0, le=1)
    """``dag``: probability that a step's digit comes from a variable (``d=c-b`` with ``b=5``)."""
    train_seed: int = 1
    eval_seed: int = 2
    on_error: Literal["fail", "quarantine"] = "fail"
    step_split: Literal["line", "sentence", "paragraph"] = "line"
    """How solutions are cut into reasoning steps, the same for labelling, the PRM's encoding and
    RL's step credit (:func:`reward.parse.step_spans`): one per line (the synthetic and GSM8K
    formats), per sentence, or per blank-line separated paragraph (free-form instruct output)."""
    answer_rules: list[str] = ["####", "boxed", "answer_is"]
    """How a solution's final answer is read (:data:`reward.registry.ANSWER_RULES`), tried in
    order, the first that finds one decides: ``####`` (the line GSM8K and the synthetic task
    write), ``boxed`` (``\\boxed{...}``), ``answer_is`` ("the answer is 72", "**Answer:** 72")
    and ``last_number``. The default reads the explicit answers that warm-started and instruct
    models write; ``last_number`` is not in it: it credits a solution that never commits to an
    answer (on the chain task, any whose last intermediate value happens to be the answer)."""
    incoming_dir: str | None = "data/incoming"
    """New problems dropped here (``*.jsonl``/``*.json`` GSM8K-style / mapped by ``columns``,
    ``*.parquet``; any case) join the train split of every source, after validation, dedupe and
    decontamination. Other files are listed in the curate metrics (``incoming.ignored``)."""
    """``fail``: stop at the first bad record, naming file, line and field.
    ``quarantine``: write bad records with their reason to ``data/rejects`` and count them."""

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) > max_steps ({self.max_steps})")
        if self.source in ("gsm8k", "jsonl", "parquet") and not self.path:
            raise ValueError(f"source '{self.source}' needs data.path")
        if self.source == "hf" and not self.hf_name:
            raise ValueError("source 'hf' needs data.hf_name")
        if self.source == "synthetic" and self.train_seed == self.eval_seed:
            raise ValueError("train_seed and eval_seed must differ (train and eval must be disjoint)")
        if self.source == "synthetic":
            self._check_synthetic_size()
        return self

    def _check_synthetic_size(self) -> None:
        """A synthetic problem names each variable with one letter (:data:`synthetic.VARIABLES`):
        chain has ``1 + steps``, dag up to ``1 + steps`` (+ a digit variable per step when
        ``literal_var_prob > 0``) ``+ max_distractors``, and at most ``MAX_DAG_STEPS`` steps."""
        from prmflow.problems.synthetic import MAX_DAG_STEPS, VARIABLES  # dvc: validation only

        letters = len(VARIABLES)
        if self.task == "chain" and self.max_steps > letters - 1:
            raise ValueError(f"max_steps={self.max_steps}: the chain task has at most {letters - 1} steps (one letter per variable)")
        if self.task == "dag":
            if self.max_steps > MAX_DAG_STEPS:
                raise ValueError(f"max_steps={self.max_steps}: the dag task has at most {MAX_DAG_STEPS} steps")
            worst = 1 + self.max_steps * (2 if self.literal_var_prob > 0 else 1) + self.max_distractors
            if worst > letters:
                raise ValueError(
                    f"dag problems of max_steps={self.max_steps}, literal_var_prob={self.literal_var_prob} and "
                    f"max_distractors={self.max_distractors} can need {worst} variables, more than {letters} letters: "
                    "lower one of them"
                )

    @field_validator("answer_rules")
    @classmethod
    def _known_rules(cls, rules: list[str]) -> list[str]:
        from reward.registry import ANSWER_RULES  # dvc: validation only

        if not rules:
            raise ValueError(f"empty; list one or more of {sorted(ANSWER_RULES)}")
        unknown = [r for r in rules if r not in ANSWER_RULES]
        if unknown:
            raise ValueError(f"unknown answer rule(s) {unknown}; registered: {sorted(ANSWER_RULES)}")
        return rules

    def solution_format(self) -> SolutionFormat:
        """How every stage reads solutions: ``step_split`` and ``answer_rules``."""
        return SolutionFormat(self.step_split, tuple(self.answer_rules))


class WarmstartConfig(_Section):
    """Supervised warm start (stage ``warmstart``)."""

    enabled: bool = True
    """For a real model: ``False`` uses it as is; the tiny default is always trained."""
    max_steps: int = Field(2000, ge=0)
    """Upper bound on SFT steps."""
    target_accuracy: float | None = Field(0.4, gt=0, le=1)
    """Stop SFT once greedy accuracy on a probe set reaches this (``None``: run ``max_steps``).
    The tiny model's accuracy jumps from near 0 to >50% within ~100 steps, at a step that varies
    run to run, so a fixed step count gives anything from 8% to 45%; measuring the curve while
    training lands the warm start in the intended range."""
    check_every: int = Field(10, gt=0)
    """Probe (and log the loss) every this many steps."""
    probe_below_loss: float | None = Field(0.2, gt=0)
    """Probe only once the mean training loss of the last ``check_every`` steps is below this
    (``None``: from the start). A greedy probe costs as much as ~10 SFT steps and reads ~0 long
    before the jump; the loss tells when the jump is near."""
    probe_problems: int = Field(200, gt=0)
    """Probe set: synthetic problems from ``seed + 1000``, minus eval questions."""
    batch_size: int = Field(32, gt=0)
    """Rows per SFT step (with ``pack_length``: packed rows of several examples each)."""
    pack_length: int = Field(128, ge=0)
    """Pack whole examples into rows of up to this many tokens, each attending only to itself
    (``0``: one example per row). An example longer than this is a row by itself, so a real
    model's long solutions are trained whole."""
    learning_rate: float = Field(1e-3, gt=0)
    lr_scheduler: str = "constant_with_warmup"
    """Any transformers scheduler name. Constant: a decaying rate can stall the tiny model
    before its accuracy jumps."""
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    cpu_bf16: bool | Literal["auto"] = "auto"
    """On CPU, train under bf16 autocast (weights and optimizer state stay fp32); ``auto``: only
    where the CPU computes bf16 natively (AVX512-BF16, AMX), since emulated bf16 is ~10x slower
    than fp32 (:func:`prmflow.lm.precision.native_cpu_bf16`). GPUs use bf16 whenever they support it."""
    cpu_attention: str | None = "eager"
    """On CPU, the attention kernel while training (a transformers ``attn_implementation``:
    ``eager``, ``sdpa``; ``None``: the model's own); the model is saved with its own, and GPUs
    always train with it. Measured on the tiny model with bf16 and packed rows: an eager step in
    ~60% of the sdpa step's CPU time."""
    num_examples: int = Field(20000, gt=0)
    """Synthetic SFT solutions generated on the fly (seeded apart from curate's seeds)."""
    verbose_fraction: float = Field(0.5, ge=0, le=1)
    """``dag`` task: share of SFT solutions written in the verbose style (every assignment
    computed, distractors too), so the warm-started policy reasons longer than it needs to."""
    seed: int = 3


class EvaluateConfig(_Section):
    """Evaluation of the policy (stage ``evaluate``)."""

    num_problems: int | None = Field(None, ge=1)
    """Evaluate on the first N eval problems (``None``: all)."""
    num_samples: int = Field(4, ge=1)
    """k for pass@k and maj@k (sampled at ``temperature``)."""
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int | None = Field(96, gt=0)
    """Token budget of the evaluated solutions (and of the warm start's probe); ``None``: derived
    from the eval references (:func:`prmflow.lm.budgets.derive_budget`). A budget that cuts over
    a quarter of them fails before sampling."""
    batch_size: int = Field(128, gt=0)
    num_examples_logged: int = Field(12, ge=0)
    seed: int = 4
    extra_eval: str | None = None
    """An extra eval file (any supported source format), reported separately."""
    extra_eval_source: Literal["auto", "gsm8k", "jsonl", "parquet"] = "auto"
    promote: bool = True
    """Carry out the gate's decision (``false`` for ablations: decide and record, move nothing)."""
    gate_z: float = Field(2.0, gt=0)
    """Promotion needs a paired gain above ``gate_z`` standard errors (the measured noise margin)."""


class LabelConfig(_Section):
    """Automatic step labelling (stage ``label``)."""

    method: str = "mc_soft"
    """Which labels the PRM trains on: a method of :data:`prmflow.labeling.methods.LABEL_METHODS`
    (``mc_hard``, ``mc_soft``, ``first_error``)."""
    compare_methods: bool = True
    """Also label the same solutions with the other methods to report their agreement and cost."""
    compare_num_problems: int | None = Field(40, ge=1)
    """Compare on the solutions of the first N problems only (``None``: all); ``method`` still
    labels every solution. The comparison costs ~50% more rollouts on what it covers."""
    num_problems: int = Field(100, ge=1)
    samples_per_problem: int = Field(4, ge=1)
    rollouts: int = Field(8, ge=1)
    max_rollouts: int | None = Field(None, ge=1)
    """Adaptive rollouts: a step prefix whose ``rollouts`` all failed draws more, doubling, up
    to this many, and stops at the first success (``mc_hard``'s and ``first_error``'s verdict is
    then "any of up to ``max_rollouts`` succeeded"; ``mc_soft``'s soft value is its success
    fraction over what it drew). Only bad verdicts pay for it. ``None``: ``rollouts`` only."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the solutions that get labelled (the policy's own samples)."""
    completer: str | None = None
    """The model the rollouts from each step prefix are drawn from: a local folder or an HF
    model id; ``None``: the policy whose solutions are labelled (Math-Shepherd's set-up). A
    stronger completer (say the champion of an earlier run, ``models/champion``) fails less
    often from a right prefix, so it calls fewer right steps bad. It reads the policy's prompts
    and steps as text: give it the same prompt format. The ``inputs`` stage fingerprints it
    (``data/inputs/completer.json``), so new weights at the same path re-run ``label``."""
    rollout_temperature: float | None = Field(0.5, gt=0)
    """Temperature of the completions from each step prefix; ``None``: ``temperature``. Lower
    makes the completer more reliable (Math-Shepherd asks of a completer only that it finishes a
    correct prefix correctly), so a correct step of a long chain is less often called bad because
    every rollout after it slipped; the estimate is then the value under that sharper completer,
    not under the policy. 0.5 measured: mc_soft agreement with the oracle 0.808 -> 0.832 (README:
    Measured)."""
    max_new_tokens: int | None = Field(96, gt=0)
    """Cap for the sampled solutions; ``None``: derived from the train references
    (:func:`prmflow.lm.budgets.derive_budget`). A budget that cuts over a quarter of them fails
    before sampling. A solution cut at the cap keeps its finished steps only (never its cut-off
    last line), and is counted (``truncation.*`` in the label metrics)."""
    rollout_max_new_tokens: int | None = Field(None, gt=0)
    """Cap for rollouts; ``None``: longest reference answer in tokens +25% +4, at most the
    solutions' cap. Rollouts cut at it are counted (``sampling.rollouts.truncated``)."""
    batch_size: int = Field(256, gt=0)
    """Sequences per ``generate`` call."""
    num_examples_logged: int = Field(8, ge=0)
    """Labelled solutions written step by step to ``data/labels/samples.md`` (and MLflow), one
    per problem first, for a reader to check the labels by hand."""
    seed: int = 5

    @model_validator(mode="after")
    def _check(self) -> LabelConfig:
        from prmflow.labeling.methods import LABEL_METHODS  # dvc: validation only (here: no import cycle)

        if self.method not in LABEL_METHODS:
            raise ValueError(f"method: unknown label method {self.method!r}; registered: {sorted(LABEL_METHODS)}")
        if self.max_rollouts is not None and self.max_rollouts < self.rollouts:
            raise ValueError(f"max_rollouts ({self.max_rollouts}) must be >= rollouts ({self.rollouts}), or null")
        return self


class PrmConfig(_Section):
    """Process reward model (stage ``train_prm``).

    The PRM is the ``init`` causal LM (frozen by default) with a head that reads, at each step
    end, the features in ``features`` (see :data:`prmflow.prm.model.FEATURES`); trained with BCE
    on the step targets (soft MC fractions or hard labels) at step ends only.
    """

    init: str = "policy"
    """``policy``: start from the warm-started policy; else an HF model id/path."""
    extra_data: str | None = None
    """External stepwise-supervision data (JSONL/parquet: prompt, completions, labels)."""
    use_own_labels: bool = True
    soft_labels: bool = True
    """Train on ``soft_labels`` (BCE on the MC fraction, never rounded); ``False``: on ``labels``."""
    features: list[Literal["hidden", "confidence", "step_confidence"]] = ["confidence", "step_confidence"]
    """What the (correctness) head reads at a step end: the backbone's last hidden state, and
    the log of the lowest probability the backbone gives any result token up to this step /
    within it. Adding ``hidden`` lowered the oracle AUC (0.96 -> 0.89) on ~1,000 labelled
    solutions: it learns label noise."""
    head: Literal["value", "factored"] = "factored"
    """``value``: the head predicts the label itself. ``factored``: the label is modelled as
    correctness (from ``features``) x progress (from hidden states), and the score is the
    correctness factor, so that a weak policy's low MC value on a long but right chain does not
    read as an error (see :func:`prmflow.prm.model.factored_bce`)."""
    head_hidden: int = Field(0, ge=0)
    """Width of the correctness head's hidden layer; 0: a linear head."""
    max_steps: int = Field(300, ge=0)
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(1e-2, gt=0)
    """Head learning rate (a fresh head on fixed-scale features learns fast)."""
    backbone_learning_rate: float = Field(0.0, ge=0)
    """0 freezes the backbone (the confidence features stay the policy's own). Fine-tuning it
    at 1e-4 fitted the labels better and the oracle worse (AUC 0.96 -> 0.91)."""
    warmup_steps: int = Field(10, ge=0)
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    """Share of the labelled problems held out (split by prompt) for the threshold and metrics."""
    calibration_fraction: float = Field(0.5, gt=0, lt=1)
    """Share of the held-out prompts used only to choose the threshold (when ``threshold`` is
    ``None``); the held-out metrics are computed on the rest (the test records) only."""
    threshold: float | None = Field(None, gt=0, lt=1)
    """Score below which a step is judged wrong; ``None``: the one with the best first-error F1
    on the calibration records (a prefix counts as good there when any rollout reached the
    answer). A fixed threshold needs no calibration records: all held-out records are test."""
    calibrate: bool = True
    """Map scores monotonically so that the threshold sits at 0.5 (rankings unchanged), so that
    "score > 0.5" means "judged right" for RL's monitors too."""
    best_of_n: int = Field(8, ge=1)
    eval_problems: int = Field(200, ge=1)
    """Best-of-N and the oracle chains use the first N curated eval problems."""
    max_new_tokens: int | None = Field(96, gt=0)
    """Cap for the best-of-N samples; ``None``: derived from the eval references, as
    ``evaluate.max_new_tokens``."""
    batch_size_eval: int = Field(128, gt=0)
    """Sequences per sampling / scoring batch."""
    seed: int = 6


class MonitorConfig(_Section):
    """Reward-hacking monitors; the gate refuses a candidate that crosses these."""

    max_prm_outcome_disagreement: float = Field(0.5, ge=0, le=1)
    """Fraction of final samples where the PRM verdict (aggregate > 0.5) and the verifier differ."""
    max_step_inflation: float = Field(1.5, gt=0)
    """Mean steps per solution of the candidate / of the warm-started base."""


DEFAULT_WEIGHTS = {"outcome": 1.0, "process": 0.0, "length": 0.0}


GROUP_LENGTH_TERMS = ("length_group", "length_group_right")
"""The reward terms that give an all-right group's completions different rewards by length."""

ORACLE_SCORERS = ("oracle", "oracle_needed")
"""The ``rl.process_scorer`` values that read the synthetic task's oracle (synthetic data only)."""


class RLConfig(_Section):
    """GRPO-family RL with hybrid rewards (stage ``train_policy``)."""

    steps: int = Field(150, ge=0)
    prompts_per_step: int = Field(16, gt=0)
    group_size: int = Field(8, ge=2)
    temperature: float = Field(0.4, gt=0)
    """Sampling temperature of the RL groups. The tiny policy at 1.0 solves a fifth of its
    samples where greedy decoding solves 45%: its tail is noise, and sharper sampling learns
    faster (README: RL recipe; 0.4 measured best of 1.0 / 0.8 / 0.6 / 0.4 / 0.2)."""
    max_new_tokens: int | None = Field(80, gt=0)
    """Token budget of the RL samples (the length penalty reaches -1 there); ``None``: derived
    from the train references (:func:`prmflow.lm.budgets.derive_budget`). A budget that cuts
    over a quarter of them fails before training; cut samples are logged (``train/truncated``)."""
    learning_rate: float = Field(1e-4, gt=0)
    lr_warmup_steps: int = Field(10, ge=0)
    """Linear warm-up from 0 (as transformers' schedulers: the first step's rate is 0): Adam's
    first updates are sign-like (its moments start at 0), so without one the first steps move
    every weight by about ``learning_rate`` whatever the signal."""
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    """After the warm-up: constant, or decaying to ``min_lr_ratio`` x ``learning_rate`` at ``steps``."""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    adam_betas: list[float] = Field(default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2)
    dynamic_sampling: bool = True
    """DAPO's dynamic sampling: keep only groups whose outcomes differ (a group all right or all
    wrong has zero advantage), drawing more problems until ``prompts_per_step`` such groups are
    found or ``max_sampling_rounds`` rounds were sampled."""
    max_sampling_rounds: int = Field(3, ge=1)
    oversample: float = Field(1.0, ge=1)
    """With ``dynamic_sampling``, each sampling round draws ``oversample`` x ``prompts_per_step``
    problems (rounded up; verl's ``gen_batch_size`` over its train batch), and the first
    ``prompts_per_step`` informative groups are kept. Whether it pays depends on the threads and
    the task (README: Measured): on ``chain`` at 2 threads every step needed two rounds of 16, and
    one round of 32 is one cheaper decode batch (the RL stage 141.5 -> 133.2 s); on ``dag`` at one
    thread (the ablation's set-up) two rounds of 32 were often needed, and decode time there grows
    with the rows (12 RL steps 27.9 -> 43.1 s). So 1 by default."""
    filter_groups_by: Literal["outcome", "process", "outcome_then_process", "outcome_or_length"] = "outcome"
    """Which groups dynamic sampling keeps: those whose outcomes differ (``outcome``: DAPO), or
    also, when the process term is on, those whose step scores differ (``process``: an all-wrong
    group still has step credit to give). With ``weights.process: 0`` both are the same.
    ``process`` is measured to collapse training on the ``dag`` task (README: Measured): with
    perfect step scores the admitted groups are nearly all all-wrong, every one of their
    completions ends on a wrong step and so has a negative credit total, nothing balances it,
    and the policy's entropy climbs until it stops solving problems; they also take the places
    of groups whose outcomes differ. ``outcome_then_process`` keeps those first and fills only
    the places left after ``max_sampling_rounds`` with groups whose step scores differ; only
    then are the others scored, ``prompts_per_step`` groups at a time until the places are full.
    ``outcome_or_length`` (with a group length term, ``weights.length_group`` or
    ``length_group_right``) also keeps all-right groups whose lengths differ, in draw order: the
    only groups where "of two right solutions, the shorter" is the whole signal, which dynamic
    sampling by outcome drops."""
    updates_per_step: int = Field(1, ge=1)
    """Optimizer steps per sampled batch (minibatches); >1 makes the clipped ratio matter."""
    clip_eps_low: float = Field(0.2, ge=0)
    clip_eps_high: float = Field(0.28, ge=0)
    kl_coef: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    advantage: str = "grpo"
    """An advantage estimator of :data:`reward.registry.ADVANTAGES`: ``grpo``, or ``dr_grpo``
    (no std normalisation; pair it with ``loss_agg: dr_grpo``, a constant length normaliser)."""
    loss_agg: Literal["token_mean", "seq_mean_token_mean", "dr_grpo"] = "token_mean"
    weights: dict[str, float] = DEFAULT_WEIGHTS
    """Hybrid reward: weight of each reward term of :data:`reward.registry.REWARDS`
    (``outcome``: the verifier, ``process``: the PRM, ``length``: the overlong penalty).
    ``process: 0`` is the outcome-only baseline. A term left out keeps its default weight."""
    process_mode: str = "step_min"
    """How PRM scores enter (:mod:`reward.hybrid`): ``sequence`` (aggregated per solution) or
    ``step_<credit>`` per step (``step_sum``: DeepSeekMath, ``step_min``: PURE, ``step_delta``:
    progress, ``step_own``: each step its own score, for scores of waste such as ``reuse``)."""
    process_scorer: Literal["prm", "oracle", "oracle_needed", "reuse", "confidence", "mc"] = "prm"
    """Who scores the steps for the process term: ``prm`` (the learned PRM, ``models/prm``),
    ``oracle`` (the synthetic task's own step labels: a perfect PRM, the upper bound of what
    process rewards can give; synthetic data only), ``oracle_needed`` (the same, also scoring
    0 a right step the target does not need: a perfect PRM of wasted work too), ``reuse`` (no
    model: in a right solution, 0 for a step whose result the answer never uses, 1 otherwise;
    a per-step length signal, wrong solutions unscored; :mod:`prmflow.prm.reuse`), ``confidence`` (the training-free
    policy-confidence score of the start policy) or ``mc`` (VinePPO-style Monte-Carlo values:
    ``mc_rollouts`` completions of each step prefix from the current policy, no learned model;
    :mod:`prmflow.rl.mc_values`; pair it with ``process_mode: step_delta``)."""
    mc_rollouts: int = Field(4, ge=1)
    """``process_scorer: mc``: rollouts per distinct step prefix (VinePPO's K)."""
    center_step_credit: bool = False
    """Step modes: shift each completion's step credit so that the completions' credit totals
    sum to zero over the group (:func:`reward.advantages.center_totals`). Without it a group
    whose completions all end on a wrong step gives every one of them a negative total (with
    ``filter_groups_by: process`` such groups are most of a batch, and training collapsed)."""
    outcome_last_step: bool = False
    """Step modes: each completion's last scored step takes its outcome (1 right, 0 wrong) as its
    score (:func:`reward.advantages.outcome_last_step`): with ``step_delta`` credit a wrong
    completion that stops short after right steps is charged at its last step, as much as any
    wrong one, instead of earning more than one that wrote every needed step and slipped."""
    step_scale_by_std: bool = True
    """Step modes: divide the normalised step scores by the std of the group's step scores
    (DeepSeekMath); ``false``: centre them only (as ``advantage: dr_grpo`` does). With a score of
    rare events (the ``reuse`` scorer's dead steps once the policy wastes little) the std shrinks
    and each remaining event's credit grows: one dead step among 40 scores about -6 std."""
    prm_online_lr: float = Field(0.0, ge=0)
    """``> 0``: the learned PRM's head keeps learning during RL (PRIME-style): before it scores a
    step's completions it takes ``prm_online_updates`` Adam steps at this rate on them, every
    step end labelled with its completion's outcome (:mod:`prmflow.rl.online_prm`). ``0``: the
    PRM stays as ``train_prm`` left it."""
    prm_online_updates: int = Field(1, ge=1)
    process_weight_schedule: Literal["constant", "linear_decay", "delayed"] = "constant"
    """The process weight over training: constant; ``linear_decay`` from ``weights.process`` at
    step 0 to 0 at ``steps`` (step credit where outcomes are sparse, outcome-only later); or
    ``delayed``: 0 for the first ``process_weight_delay`` of the steps, then ``weights.process``
    (outcome-only first, then the process term: Kimi k1.5 warms its length penalty up this way,
    as it slows early training)."""
    process_weight_delay: float = Field(0.5, ge=0, lt=1)
    """With ``process_weight_schedule: delayed``: the fraction of ``steps`` run before the process
    term starts."""
    process_agg: Literal["min", "mean", "last", "product"] = "min"
    length_budget: int = Field(64, gt=0)
    """Tokens before the overlong penalty starts (it reaches -1 at ``max_new_tokens``)."""
    checkpoint_every: int = Field(10, ge=1)
    eval_every: int = Field(20, ge=0)
    """Greedy accuracy on a fixed eval subset every N steps (0: never) for the learning curve."""
    eval_problems: int = Field(200, ge=1)
    max_verifier_errors: float = Field(0.05, ge=0, le=1)
    """A step fails when more than this share of its outcome verdicts are verifier errors (a
    failing answer checker, not a wrong answer); counts are logged as ``verifier/errors``."""
    monitors: MonitorConfig = MonitorConfig()
    prm_monitor_every: int = Field(10, ge=1)
    """With the process term off, the PRM scores the RL samples (``monitor/prm_*`` in the
    training curve) only every this many steps: scoring was ~15% of an RL step on CPU, and the
    gate scores the candidate's samples itself. With the term on, every step is scored."""
    micro_batch_size: int | None = Field(32, gt=0)
    """Rows per forward/backward pass of an update (``None``: the whole batch): rows are sorted by
    length and each micro-batch is padded only to its own longest, the gradients added up to
    the whole batch's (verl's ``ppo_micro_batch_size``; also what bounds a GPU's activation
    memory). Measured on the tiny model, 128 rows: see README (Measured)."""
    shared_prompt: bool = True
    """The update runs each prompt once for all its rows (its group), micro-batches holding whole
    groups: the completions attend to the prompt's K/V (:func:`prmflow.lm.shared_prefix.completion_logprobs`),
    the same log-probs and gradients up to float rounding, for the prompt's share of the compute
    once instead of ``group_size`` times. Used on one process with a model the fast decode loop
    supports; elsewhere (torchrun/DDP, other models) every row runs whole, as with ``false``."""
    cpu_bf16: bool | Literal["auto"] = "auto"
    """On CPU, the update's forward and backward run under bf16 autocast (weights, optimizer state
    and the loss stay fp32; sampling stays fp32); ``auto``: only where the CPU computes bf16
    natively (:func:`prmflow.lm.precision.native_cpu_bf16`). Measured on the tiny model, 128
    rows, on a CPU with native bf16: an update in 42% of the fp32 sdpa update's time; emulated
    bf16 (AVX2 only) is ~10x slower than fp32. GPUs train in the model's own dtype."""
    seed: int = 7

    @field_validator("weights", mode="before")
    @classmethod
    def _default_weights(cls, v):
        return {**DEFAULT_WEIGHTS, **v} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _check(self) -> RLConfig:
        import reward  # dvc: validation only
        from reward.hybrid import process_modes  # dvc: validation only

        unknown = sorted(set(self.weights) - set(reward.REWARDS))
        if unknown:
            raise ValueError(f"weights: unknown reward term(s) {unknown}; registered: {sorted(reward.REWARDS)}")
        if self.advantage not in reward.ADVANTAGES:
            raise ValueError(f"advantage: unknown estimator {self.advantage!r}; registered: {sorted(reward.ADVANTAGES)}")
        if self.prm_online_lr > 0 and self.process_scorer != "prm":
            raise ValueError(f"prm_online_lr: only the learned PRM learns online, but process_scorer is {self.process_scorer!r}")
        if self.process_mode not in process_modes():
            raise ValueError(f"process_mode: {self.process_mode!r} is not one of {process_modes()}")
        if self.filter_groups_by == "outcome_or_length" and not any(self.weight(t) > 0 for t in GROUP_LENGTH_TERMS):
            raise ValueError(
                f"filter_groups_by: outcome_or_length keeps all-right groups for a group length term, but no weight of "
                f"{list(GROUP_LENGTH_TERMS)} is > 0: they would teach nothing"
            )
        return self

    def weight(self, term: str) -> float:
        """The weight of a reward term (0 when absent)."""
        return self.weights.get(term, 0.0)

    @property
    def prompts_per_round(self) -> int:
        """Problems drawn per sampling round: ``oversample`` x ``prompts_per_step`` with dynamic
        sampling (each round keeps only informative groups), else ``prompts_per_step``."""
        return math.ceil(self.oversample * self.prompts_per_step - 1e-9) if self.dynamic_sampling else self.prompts_per_step


class LifecycleConfig(_Section):
    """How the lifecycle flow iterates and schedules (read by the flows)."""

    iterations: int = Field(1, ge=1)
    """Iterations per ``prmflow run``: iteration k+1 labels and trains from iteration k's champion."""
    on_conflict: OnConflict = "wait"
    """When another run holds the workspace: wait for it, skip this run, or fail."""
    accumulate_labels: bool = True
    """Iteration k+1's PRM trains on the labels of iterations 1..k too (``data/label_history``)."""
    lock_timeout_s: float = Field(3600, gt=0)
    schedule_cron: str | None = None
    """Cron of the scheduled ``lifecycle`` deployment (``prmflow serve``), e.g. ``0 3 * * *``."""


class ComputeConfig(_Section):
    """Where sampling and training run (:mod:`prmflow.compute`). Results do not depend on these
    settings (sampling goes shard by shard, each shard seeded on its own), except as said for
    ``rl_shard_prompts``; they are not DVC params, so changing them re-runs nothing."""

    backend: Literal["local", "ray"] = "local"
    """``local``: ``label`` and ``evaluate`` sample in this process; ``ray``: on ``workers`` Ray
    actors that each load the policy once and sample shards of prompts."""
    ray_address: str | None = None
    """``host:port`` of a running cluster's head (``ray start --head``), ``ray://host:port``
    (Ray Client) or ``auto``; ``null``: start a local cluster for the run."""
    workers: int = Field(2, ge=1)
    """Ray actors sampling for one policy."""
    cpus_per_worker: float = Field(1.0, gt=0)
    """CPUs each actor reserves (and its torch threads)."""
    gpus_per_worker: float = Field(0.0, ge=0)
    """GPUs each actor reserves (fractions share a GPU between actors)."""
    rl_shard_prompts: int | None = Field(None, gt=0)
    """``train_policy`` under ``torchrun``: prompts per sampling shard, each rank sampling whole
    shards. ``null``: one shard per rank (the samples depend on the number of processes); a
    number that divides ``rl.prompts_per_step / processes`` makes the samples, and so the
    weights, the same for any number of processes."""


class Params(_Section):
    """All of ``params.yaml``. ``Params()`` is the shipped file; a params file must hold every
    section (:func:`validate_params`), so that a forgotten section cannot run on defaults."""

    seed: int = 0
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    warmstart: WarmstartConfig = WarmstartConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    label: LabelConfig = LabelConfig()
    prm: PrmConfig = PrmConfig()
    rl: RLConfig = RLConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    compute: ComputeConfig = ComputeConfig()

    @model_validator(mode="after")
    def _check(self) -> Params:
        if self.rl.process_scorer in ORACLE_SCORERS and self.data.source != "synthetic":
            raise ValueError(
                f"rl.process_scorer: {self.rl.process_scorer} scores steps with the synthetic task's oracle, "
                f"but data.source is {self.data.source!r} (it needs synthetic)"
            )
        return self


def _format_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "value_error":  # a validator's own message, which names its keys
            msg = msg.removeprefix("Value error, ")
        lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
    return "\n".join(lines)


class _YAML12Floats(yaml.SafeLoader):
    """PyYAML is YAML 1.1, where ``1e-4`` is a string; DVC reads params.yaml as YAML 1.2, where it
    is a number. This loader reads exponent floats without a dot as numbers too, so that
    ``-S rl.learning_rate=1e-4`` means what DVC (and the user) means."""


_YAML12Floats.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """YAML as prmflow and DVC read it (:class:`_YAML12Floats`)."""
    return yaml.load(text, Loader=_YAML12Floats)  # noqa: S506 - a SafeLoader subclass


def value_at(params: Params, key: str) -> Any:
    """The value at a dotted key of validated params.

    >>> value_at(Params(), "rl.weights.outcome")
    1.0
    """
    node: Any = params.model_dump()
    for part in key.split("."):
        node = node[part]
    return node


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one DVC-style ``-S`` override ``a.b.c=value`` (value read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected key=value (DVC -S syntax)")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}': empty key")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': value is not valid YAML: {e}") from e
    return parts, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of ``raw`` with DVC-style overrides applied (nested dicts created)."""
    import copy

    out = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override '{text}': '{p}' is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def validate_params(raw: Any, source: str = PARAMS_FILE) -> Params:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    missing = [k for k in Params.model_fields if k not in raw]
    if missing:
        every = ", ".join(Params.model_fields)
        raise ConfigError("\n".join(f"{source}: {k}: missing (a params file holds every section: {every})" for k in missing))
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e, source)) from None


def read_params_file(path: str | Path = PARAMS_FILE) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: not found (run from the project root or pass --params)")
    try:
        return load_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e


def load_params(path: str | Path = PARAMS_FILE, overrides: list[str] | None = None) -> Params:
    """Load and validate ``params.yaml`` (plus optional ``-S`` overrides) once."""
    raw = read_params_file(path)
    if overrides:
        raw = apply_overrides(raw, overrides)
    return validate_params(raw, str(path))


# --------------------------------------------------------------------------- the flow's state

STATE_FILE = "flow_state.yaml"
"""The flow's own params file (not the user's): ``dvc.yaml`` reads it beside ``params.yaml``."""


class FlowState(_Section):
    """Where the lifecycle flow is: which iteration, which policy the iteration starts from, and
    earlier iterations' labels. Written by the flow for the time of a run (``flow_state.yaml``),
    back to these defaults afterwards; DVC tracks it like ``params.yaml``, so a changed
    iteration re-runs label onwards and ``dvc exp apply`` restores it with the experiment."""

    iteration: int = Field(1, ge=1)
    start_policy: str = "models/base"
    """``models/base`` in iteration 1, then ``models/start`` (the flow's snapshot of the champion)."""
    label_history: str | None = None
    """Folder of earlier iterations' labels (one ``datasets`` folder each) the PRM also trains
    on; set from iteration 2 when ``lifecycle.accumulate_labels``."""


def load_state(path: str | Path = STATE_FILE) -> FlowState:
    """The flow state in ``path`` (defaults when the file is absent)."""
    path = Path(path)
    raw = read_params_file(path) if path.exists() else {}
    try:
        return FlowState.model_validate(raw or {})
    except ValidationError as e:
        raise ConfigError(_format_error(e, str(path))) from None


def state_yaml(state: FlowState) -> str:
    """The text of ``flow_state.yaml`` for ``state`` (with the header that says what it is)."""
    body = yaml.safe_dump(state.model_dump(), sort_keys=False)
    return (
        "# The lifecycle flow's state (not a user setting): written by `prmflow run` for the time of a run\n"
        "# and put back to these defaults afterwards. dvc.yaml reads it beside params.yaml.\n" + body
    )
