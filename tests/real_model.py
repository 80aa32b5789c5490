"""A small "private checkpoint" for tests: a Qwen2-architecture causal LM with its own byte-level
BPE tokenizer (trained with ``tokenizers`` on the problems below), a chat template, saved with
``save_pretrained``, and GSM8K-format problems written for the tests.

Saved in a Qwen2 folder, this tokenizer is what ``AutoTokenizer`` rebuilds as ``Qwen2Tokenizer``
(digits split one by one), unlike the ``tokenizer.json`` the model was trained with: the case
:func:`prmflow.lm.models.load_tokenizer` must catch. :func:`make_checkpoint` trains the model
for a few seconds, in the chat format, to write one step per line and end with "The answer is
N." (not GSM8K's ``#### N``), so that real text flows through every stage and the answer rules
matter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

PROBLEMS = [
    (
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    ),
    (
        "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
        "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
    ),
    (
        "Betty has 15 apples. She buys 3 bags with 4 apples each. How many apples does she have now?",
        "The bags hold 3*4 = <<3*4=12>>12 apples.\nBetty has 15+12 = <<15+12=27>>27 apples now.\n#### 27",
    ),
    (
        "A shelf has 6 rows of 8 books. Tom takes away 9 books. How many books are left on the shelf?",
        "The shelf has 6*8 = <<6*8=48>>48 books.\nAfter Tom takes 9, 48-9 = <<48-9=39>>39 books are left.\n#### 39",
    ),
    (
        "Mia runs 3 miles every day for 2 weeks. How many miles does she run in total?",
        "Two weeks are 2*7 = <<2*7=14>>14 days.\nMia runs 3*14 = <<3*14=42>>42 miles.\n#### 42",
    ),
    (
        "A baker makes 120 rolls and sells 3/4 of them. How many rolls are left?",
        "He sells 120*3/4 = <<120*3/4=90>>90 rolls.\nSo 120-90 = <<120-90=30>>30 rolls are left.\n#### 30",
    ),
    (
        "Sam has 25 stickers and gives 7 to each of his 3 friends. How many stickers does Sam keep?",
        "Sam gives away 7*3 = <<7*3=21>>21 stickers.\nHe keeps 25-21 = <<25-21=4>>4 stickers.\n#### 4",
    ),
    (
        "A car travels 60 miles per hour for 3 hours and then 40 miles per hour for 2 hours. How far does it travel?",
        "First it goes 60*3 = <<60*3=180>>180 miles.\nThen it goes 40*2 = <<40*2=80>>80 miles.\nIn total 180+80 = <<180+80=260>>260 miles.\n#### 260",
    ),
    (
        "Lena buys 4 notebooks at $3 each and a pen for $2. How much does she spend?",
        "The notebooks cost 4*3 = $<<4*3=12>>12.\nWith the pen she spends 12+2 = $<<12+2=14>>14.\n#### 14",
    ),
    (
        "There are 32 students in a class and 1/4 of them wear glasses. How many students do not wear glasses?",
        "32/4 = <<32/4=8>>8 students wear glasses.\n32-8 = <<32-8=24>>24 students do not.\n#### 24",
    ),
    (
        "A farmer has 5 pens with 9 sheep each. He sells 13 sheep. How many sheep does he have left?",
        "He has 5*9 = <<5*9=45>>45 sheep.\nAfter selling 13 he has 45-13 = <<45-13=32>>32 sheep.\n#### 32",
    ),
    (
        "Omar reads 15 pages a day. How many pages does he read in 6 days?",
        "Omar reads 15*6 = <<15*6=90>>90 pages.\n#### 90",
    ),
]
"""(question, GSM8K answer): steps with calculator annotations, then ``#### N``."""

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def write_gsm8k(path: Path, problems=PROBLEMS) -> Path:
    """The problems as a GSM8K JSONL file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in problems))
    return path


def model_solution(answer: str) -> str:
    """What the checkpoint is trained to write for a GSM8K answer: its steps without calculator
    annotations, one per line, then "The answer is N." instead of ``#### N``."""
    steps, final = answer.split("\n#### ")
    return re.sub(r"<<[^<>]*>>", "", steps) + f"\nThe answer is {final}."


def build_tokenizer(texts: list[str], vocab_size: int = 420, chat_template: str | None = CHAT_TEMPLATE):
    """A byte-level BPE (``tokenizers``, GPT-2-style pre-tokenizer: ``48`` stays one piece) with
    Qwen's chat tokens and ``chat_template``; EOS is ``<|im_end|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = chat_template
    return fast


def make_checkpoint(path: Path, problems=PROBLEMS, train_steps: int = 150, seed: int = 0) -> Path:
    """Save a Qwen2 checkpoint with its tokenizer to ``path``, trained ``train_steps`` steps (full
    batch, plain torch, a few seconds on CPU) on the problems in the chat format."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    texts = [q for q, _ in problems] + [model_solution(a) for _, a in problems]
    tok = build_tokenizer(texts + [CHAT_TEMPLATE])
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = AutoModelForCausalLM.from_config(config)
    _train(model, tok, problems, train_steps)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _train(model, tok, problems, steps: int) -> None:
    import torch

    rows = []
    for q, a in problems:
        prompt = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        s = tok(model_solution(a), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        rows.append((p + s, [-100] * len(p) + s))
    n = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [tok.pad_token_id] * (n - len(r)) for r, _ in rows])
    labels = torch.tensor([lab + [-100] * (n - len(lab)) for _, lab in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r, _ in rows])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
