"""Warm-start recipe benchmark: how fast can the tiny default reach the intended imperfect policy?

Run from the repository root (CPU; ``--threads`` sets torch's intra-op threads, default 1)::

    python benchmarks/warmstart_recipe.py profile --no_compile   # s/step: Trainer vs plain loop variants
    python benchmarks/warmstart_recipe.py threads                # recommended step at 1 vs 2 threads
    python benchmarks/warmstart_recipe.py baseline               # today's stage code (Trainer, params.yaml)
    python benchmarks/warmstart_recipe.py recipe --seeds 3 4 5   # the recommended recipe (RECOMMENDED)
    python benchmarks/warmstart_recipe.py recipe --trainer       # the same recipe through the Trainer
    python benchmarks/warmstart_recipe.py curve --lr 1e-3 --batching doc128 --bf16 true ...  # any variant

Each run prints its learning curve (step, train seconds, wall seconds, mean train loss, "tf",
greedy probe accuracy) and greedy accuracy on 400 held-out problems (``generate_problems(400,
seed=2, 2, 8)``, the eval split's generator) by chain length, plus how the wrong ones fail; ``--out
FILE`` appends one JSON line per run. "probe" is the stage's greedy probe
(``tasks.sampling.sample``, 200 problems from ``seed + 1000``). "tf" is teacher-forced exact match on
the same problems: greedy decoding reproduces a solution iff every target token is the argmax
given the reference prefix, so tf <= greedy accuracy (measured 0.02-0.05 below it).
Training data, loss (mean over solution tokens), clipping and AdamW match the stage.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reward.parse import extract_answer  # noqa: E402
from tasks.config import load_params  # noqa: E402
from tasks.modeling import build_tokenizer, format_prompt  # noqa: E402
from tasks.synthetic import generate_problems  # noqa: E402

HELD_OUT = dict(n=400, seed=2)  # the eval-like held-out set: generate_problems(400, seed=2, 2, 8)


# ----------------------------------------------------------------------------- data and model
def build_model(tokenizer, hidden=128, layers=4, heads=4, inter=384, seed=3, attn="sdpa"):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        intermediate_size=inter,
        max_position_embeddings=192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn)


def encode(tokenizer, problems: list[dict], template="{question}\n") -> list[tuple[list[int], list[int]]]:
    """(ids, labels) per problem, exactly as the stage's ``_SFTDataset`` builds them."""
    eos = tokenizer.eos_token_id
    out = []
    for p in problems:
        ids_p = tokenizer(template.format(question=p["question"]))["input_ids"]
        s = tokenizer(p["answer"], add_special_tokens=False)["input_ids"] + [eos]
        out.append((ids_p + s, [-100] * len(ids_p) + s))
    return out


def data(seed: int, num_examples=20000, probe_n=200):
    """Train problems and probe as the stage draws them (minus held-out questions)."""
    held = generate_problems(HELD_OUT["n"], HELD_OUT["seed"], 2, 8)
    held_q = {p["question"] for p in held}
    train = [p for p in generate_problems(num_examples, seed, 2, 8) if p["question"] not in held_q]
    probe = [p for p in generate_problems(probe_n, seed + 1000, 2, 8) if p["question"] not in held_q]
    return train, probe, held


def pad_batch(items, pad_id: int, with_mask=True):
    """Right-padded batch; the mask is dropped when every row has the same length."""
    n = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), n), pad_id, dtype=torch.long)
    labels = torch.full((len(items), n), -100, dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    for i, (ids, lab) in enumerate(items):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(ids)] = 1
    batch = {"input_ids": input_ids, "labels": labels}
    if with_mask and not bool(mask.all()):
        batch["attention_mask"] = mask
    return batch


def pack_batch(rows, pad_id: int, pack_len: int, doc: bool):
    """Rows of concatenated solutions, right-padded to ``pack_len`` (padding is another "document")."""
    input_ids = torch.full((len(rows), pack_len), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), pack_len), -100, dtype=torch.long)
    pos = torch.arange(pack_len).repeat(len(rows), 1)
    for i, (ids, lab, p) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        pos[i, : len(p)] = torch.tensor(p)
        pos[i, len(p) :] = torch.arange(pack_len - len(p))
    batch = {"input_ids": input_ids, "labels": labels}
    if doc:
        batch["position_ids"] = pos
    return batch


def first_fit_rows(items, order, pack_len: int):
    """Rows of whole solutions (ids, labels, position ids restarting per solution), first fit
    over up to 16 open rows: ~88% of a 128-token row is real tokens (padded batches: ~66%)."""
    min_len = min(len(ids) for ids, _ in items)
    open_rows: list[tuple[list, list, list]] = []
    for i in order:
        ids, lab = items[i]
        row = next((r for r in open_rows if len(r[0]) + len(ids) <= pack_len), None)
        if row is None:
            row = ([], [], [])
            open_rows.append(row)
        row[0].extend(ids)
        row[1].extend(lab)
        row[2].extend(range(len(ids)))
        if pack_len - len(row[0]) < min_len or len(open_rows) > 16:
            full = row if pack_len - len(row[0]) < min_len else max(open_rows, key=lambda r: len(r[0]))
            open_rows.remove(full)
            yield full


def batch_stream(items, batch_size: int, mode: str, seed: int, pad_id: int):
    """Endless batches. ``pad``: shuffled, padded to the longest row (the stage's collate).
    ``bucket``: rows of one length only (a chain of k steps always has the same token count
    with this tokenizer), so no padding and no attention mask; buckets are drawn in shuffled
    order, each batch from one length. ``pack``: several solutions concatenated per row up to
    ``pack_len`` tokens, no mask between them (they are independent problems)."""
    rng = random.Random(seed)
    while True:
        order = list(range(len(items)))
        rng.shuffle(order)
        if mode == "pad":
            for s in range(0, len(order) - batch_size + 1, batch_size):
                yield pad_batch([items[i] for i in order[s : s + batch_size]], pad_id)
        elif mode == "bucket":
            by_len: dict[int, list[int]] = {}
            for i in order:
                by_len.setdefault(len(items[i][0]), []).append(i)
            chunks = []
            for idx in by_len.values():
                chunks += [idx[s : s + batch_size] for s in range(0, len(idx) - batch_size + 1, batch_size)]
            rng.shuffle(chunks)
            for c in chunks:
                yield pad_batch([items[i] for i in c], pad_id)
        elif mode.startswith(("pack", "doc")):
            # packN: no mask between packed solutions; docN: each attends only to itself
            # (position_ids restart per solution; transformers builds the block-diagonal mask).
            doc = mode.startswith("doc")
            pack_len = int(mode[4:] or 128) if not doc else int(mode[3:] or 128)
            done = []
            for row in first_fit_rows(items, order, pack_len):
                done.append(row)
                if len(done) == batch_size:
                    yield pack_batch(done, pad_id, pack_len, doc)
                    done = []
        else:
            raise ValueError(mode)


# ----------------------------------------------------------------------------- probes
@torch.no_grad()
def tf_exact(model, probe_items, pad_id: int) -> float:
    """Teacher-forced exact match: fraction of problems whose every target token is the argmax.
    One forward per chain length (same length = same token count: no padding, no mask)."""
    was = model.training
    model.eval()
    by_len: dict[int, list] = {}
    for it in probe_items:
        by_len.setdefault(len(it[0]), []).append(it)
    hits = 0
    for group in by_len.values():
        b = pad_batch(group, pad_id)
        logits = model(input_ids=b["input_ids"], use_cache=False).logits
        pred = logits[:, :-1].argmax(-1)
        tgt = b["labels"][:, 1:]
        hits += int(((pred == tgt) | (tgt == -100)).all(dim=1).sum())
    model.train(was)
    return hits / max(1, len(probe_items))


def greedy_correct(model, tokenizer, problems, max_new_tokens=96, texts: list | None = None) -> list[bool]:
    """The stage's probe: greedy decoding (``tasks.sampling.sample``), final answer right?"""
    from tasks.sampling import sample

    mcfg = load_params().model
    prompts = [format_prompt(p["question"], mcfg) for p in problems]
    out = sample(model, tokenizer, prompts, greedy=True, max_new_tokens=max_new_tokens, batch_size=256)
    if texts is not None:
        texts.extend(out.texts)
    return [extract_answer(t) == p["final_answer"] for t, p in zip(out.texts, problems)]


def by_length(model, tokenizer, problems) -> dict:
    """Greedy accuracy overall and per chain length, and how the failures fail (oracle):
    ``prefix_ok``: share of wrong solutions whose first step is right (a partly-right prefix);
    ``first_err``: mean index of the first wrong step among wrong solutions;
    ``len_ok``: share of wrong solutions with the right number of steps."""
    from reward.parse import split_steps
    from tasks.synthetic import oracle_first_error

    texts: list[str] = []
    ok = greedy_correct(model, tokenizer, problems, texts=texts)
    res = {"all": sum(ok) / len(ok)}
    for k in range(2, 9):
        sel = [o for o, p in zip(ok, problems) if p["difficulty"] == k]
        res[k] = sum(sel) / max(1, len(sel))
    wrong = [(t, p) for o, t, p in zip(ok, texts, problems) if not o]
    fe = [oracle_first_error(p["question"], t) for t, p in wrong]
    fe = [e for e in fe if e is not None]
    res["prefix_ok"] = sum(e >= 1 for e in fe) / max(1, len(wrong))
    res["first_err"] = sum(fe) / max(1, len(fe))
    res["len_ok"] = sum(len(split_steps(t)) == p["difficulty"] for t, p in wrong) / max(1, len(wrong))
    return res


# ----------------------------------------------------------------------------- plain loop
@dataclass
class Recipe:
    seed: int = 3
    batch_size: int = 32
    lr: float = 2e-3
    schedule: str = "constant"  # constant | cosine (to lr * floor at max_steps) | linear
    warmup: int = 30
    floor: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    clip: float = 1.0
    batching: str = "pad"  # pad | bucket | packN
    max_steps: int = 2000
    check_every: int = 50
    check_from: int = 0  # no probe before this step
    target: float = 0.3
    stop_on: str = "probe"  # probe (greedy, the stage's) | tf (teacher-forced exact match)
    confirm_greedy: bool = True  # stop_on=tf: once tf >= target, run the greedy probe too, stop on it
    greedy_from_tf: float = 0.0  # stop_on=probe: skip the greedy probe while tf is below this
    fine_every: int = 0  # once tf >= greedy_from_tf, check every this many steps (0: check_every)
    tf_probe: bool = True  # compute the teacher-forced probe at each check (costs about as much as greedy)
    probe_below_loss: float = 0.0  # > 0: no checks while the mean train loss of the last 25 steps is above this
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    inter: int = 384
    attn: str = "sdpa"  # sdpa | eager
    threads: int = 1
    compile: bool = False
    bf16: bool = False
    fused: bool = False  # fused AdamW kernel on CPU
    num_examples: int = 20000
    log: list = field(default_factory=list)


def lr_at(r: Recipe, step: int) -> float:
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    if r.schedule == "constant":
        return r.lr
    t = min(1.0, (step - r.warmup) / max(1, r.max_steps - r.warmup))
    if r.schedule == "cosine":
        return r.lr * (r.floor + (1 - r.floor) * 0.5 * (1 + math.cos(math.pi * t)))
    if r.schedule == "linear":
        return r.lr * (1 - (1 - r.floor) * t)
    raise ValueError(r.schedule)


def train_loop(r: Recipe, eval_held=True, verbose=True) -> dict:
    """Plain torch SFT loop with the stage's data, loss (mean over solution tokens) and probe."""
    torch.set_num_threads(r.threads)
    t_setup = time.time()
    random.seed(r.seed)
    tok = build_tokenizer(100)
    pad_id = tok.pad_token_id
    train, probe, held = data(r.seed, r.num_examples)
    items, probe_items = encode(tok, train), encode(tok, probe)
    model = build_model(tok, r.hidden, r.layers, r.heads, r.inter, seed=r.seed, attn=r.attn)
    model.train()
    params = [p for p in model.parameters()]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": r.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=r.lr, betas=r.betas, fused=r.fused or None,
    )

    def loss_fn(b):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=r.bf16):
            return model(**b, use_cache=False).loss

    step_fn = torch.compile(loss_fn, dynamic=True) if r.compile else loss_fn
    stream = batch_stream(items, r.batch_size, r.batching, r.seed, pad_id)
    setup_s = time.time() - t_setup
    t0, c0 = time.time(), time.process_time()
    probe_s = probe_cpu = 0.0
    curve = []
    losses = []
    tokens = 0
    step = 0
    stopped = False
    every = r.check_every
    while step < r.max_steps and not stopped:
        b = next(stream)
        for g in opt.param_groups:
            g["lr"] = lr_at(r, step)
        loss = step_fn(b)
        loss.backward()
        if r.clip:
            torch.nn.utils.clip_grad_norm_(params, r.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        tokens += b["input_ids"].numel()
        step += 1
        recent = losses[-25:]
        quiet = r.probe_below_loss > 0 and sum(recent) / len(recent) > r.probe_below_loss
        if (step % every == 0 and step >= r.check_from and not quiet) or step == r.max_steps:
            tp, cp = time.time(), time.process_time()
            row = {"step": step, "train_s": round(tp - t0 - probe_s, 2), "train_cpu": round(cp - c0 - probe_cpu, 2), "loss": round(sum(losses[-r.check_every:]) / len(losses[-r.check_every:]), 4)}
            row["tf"] = tf_exact(model, probe_items, pad_id) if r.tf_probe or r.stop_on == "tf" else float("nan")
            row["tf_s"] = round(time.time() - tp, 3)
            tf_ok = not (r.tf_probe or r.stop_on == "tf") or row["tf"] >= r.greedy_from_tf
            if (r.stop_on == "probe" and tf_ok) or (r.stop_on == "tf" and r.confirm_greedy and row["tf"] >= r.target):
                tg = time.time()
                ok = greedy_correct(model, tok, probe)
                row["probe"] = sum(ok) / len(ok)
                row["probe_s"] = round(time.time() - tg, 3)
                stopped = row["probe"] >= r.target
            elif r.stop_on == "tf":
                stopped = row["tf"] >= r.target
            if r.fine_every and tf_ok:
                every = r.fine_every
            probe_s += time.time() - tp
            probe_cpu += time.process_time() - cp
            row["wall_s"] = round(time.time() - t0, 2)
            row["cpu_s"] = round(time.process_time() - c0, 2)
            curve.append(row)
            if verbose:
                print(json.dumps(row), flush=True)
    wall, cpu = time.time() - t0, time.process_time() - c0
    res = {
        "recipe": {k: v for k, v in asdict(r).items() if k != "log"},
        "steps": step,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "probe_cpu_s": round(probe_cpu, 2),
        "setup_s": round(setup_s, 2),
        "probe_total_s": round(probe_s, 2),
        "tokens": tokens,
        "s_per_step": round((wall - probe_s) / max(1, step), 4),
        "final_probe": next((c["probe"] for c in reversed(curve) if "probe" in c), None),
        "final_tf": curve[-1]["tf"] if curve else None,
        "checks": len(curve),
        "curve": curve,
    }
    if eval_held:
        res["held_out"] = by_length(model, tok, held)
        res["held_out_tf"] = tf_exact(model, encode(tok, held), pad_id)
    res["model"] = model
    res["tokenizer"] = tok
    return res


# ----------------------------------------------------------------------------- Trainer (today)
def trainer_run(seed=3, threads=1, max_steps=None, probe=True, overrides=()) -> dict:
    """Today's stage code path (``tasks.warmstart.sft`` with params.yaml), timing each probe."""
    import tempfile

    import tasks.warmstart as ws

    torch.set_num_threads(threads)
    ov = [f"warmstart.seed={seed}", *overrides]
    if max_steps:
        ov.append(f"warmstart.max_steps={max_steps}")
    params = load_params("params.yaml", ov)
    tok = build_tokenizer(100)
    train, probe_set, held = data(seed, params.warmstart.num_examples)
    random.seed(seed)
    torch.manual_seed(seed)
    model = build_model(tok, seed=seed)
    pairs = [(format_prompt(p["question"], params.model), p["answer"]) for p in train]
    timings = []
    orig = ws.probe_accuracy

    def timed(*a, **k):
        t = time.time()
        acc = orig(*a, **k)
        timings.append(time.time() - t)
        return acc

    ws.probe_accuracy = timed
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        res = ws.sft(model, tok, pairs, params, Path(d), False, probe_set if probe else None)
    ws.probe_accuracy = orig
    wall = time.time() - t0
    out = {
        "steps": res["sft_steps"], "wall_s": round(wall, 2), "probe_total_s": round(sum(timings), 2),
        "s_per_step": round((wall - sum(timings)) / res["sft_steps"], 4),
        "final_probe": res.get("probe_accuracy"), "curve": res["probe_curve"],
    }
    out["held_out"] = by_length(model, tok, held)
    return out


def trainer_packed(r: Recipe) -> dict:
    """The same recipe through the transformers ``Trainer``: a pre-packed dataset (rows of
    ``doc128``), ``bf16=True`` (CPU autocast), eager attention, and a probe callback."""
    import tempfile

    from transformers import Trainer, TrainerCallback, TrainingArguments

    torch.set_num_threads(r.threads)
    random.seed(r.seed)
    tok = build_tokenizer(100)
    pad_id = tok.pad_token_id
    train, probe, held = data(r.seed, r.num_examples)
    items, probe_items = encode(tok, train), encode(tok, probe)
    order = list(range(len(items)))
    random.Random(r.seed).shuffle(order)
    pack_len = int(r.batching[3:])
    rows = list(first_fit_rows(items, order, pack_len))
    model = build_model(tok, r.hidden, r.layers, r.heads, r.inter, seed=r.seed, attn=r.attn)
    model.config.use_cache = False  # with a cache object, transformers skips the packed-sequence mask
    curve: list[dict] = []
    t0, c0 = time.time(), time.process_time()
    spent = {"wall": 0.0, "cpu": 0.0, "every": r.check_every}

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % spent["every"]:
                return
            tp, cp = time.time(), time.process_time()
            row = {"step": state.global_step, "train_s": round(tp - t0 - spent["wall"], 2), "train_cpu": round(cp - c0 - spent["cpu"], 2), "loss": float("nan")}
            row["tf"] = tf_exact(model, probe_items, pad_id)
            if row["tf"] >= r.greedy_from_tf:
                model.config.use_cache = True
                ok = greedy_correct(model, tok, probe)
                model.config.use_cache = False
                row["probe"] = sum(ok) / len(ok)
                control.should_training_stop = row["probe"] >= r.target
                spent["every"] = r.fine_every or r.check_every
            spent["wall"] += time.time() - tp
            spent["cpu"] += time.process_time() - cp
            row["wall_s"] = round(time.time() - t0, 2)
            curve.append(row)
            print(json.dumps(row), flush=True)

    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(
            output_dir=d, max_steps=r.max_steps, per_device_train_batch_size=r.batch_size, learning_rate=r.lr,
            warmup_steps=r.warmup, lr_scheduler_type="constant_with_warmup", weight_decay=r.weight_decay,
            adam_beta1=r.betas[0], adam_beta2=r.betas[1], max_grad_norm=r.clip, bf16=r.bf16, use_cpu=True,
            logging_steps=r.check_every, save_strategy="no", report_to=[], seed=r.seed, data_seed=r.seed,
            dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows, callbacks=[Probe()],
                          data_collator=lambda b: pack_batch(b, pad_id, pack_len, doc=True))
        trainer.train()
    model.config.use_cache = True
    wall, cpu = time.time() - t0, time.process_time() - c0
    res = {"recipe": {**{k: v for k, v in asdict(r).items() if k != "log"}, "trainer": True}, "steps": trainer.state.global_step,
           "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "probe_total_s": round(spent["wall"], 2), "probe_cpu_s": round(spent["cpu"], 2),
           "s_per_step": round((wall - spent["wall"]) / max(1, trainer.state.global_step), 4),
           "final_probe": next((c["probe"] for c in reversed(curve) if "probe" in c), None), "curve": curve}
    res["held_out"] = by_length(model, tok, held)
    return res


# ----------------------------------------------------------------------------- profile
def profile(threads: int, steps: int = 40, batch_size: int = 32, compile_too: bool = True) -> None:
    """Seconds per SFT step at batch 32: Trainer vs plain loops, same model/data, no probe."""
    from transformers import Trainer, TrainingArguments

    import tasks.warmstart as ws

    torch.set_num_threads(threads)
    tok = build_tokenizer(100)
    train, _, _ = data(3, 4000)
    items = encode(tok, train)
    rows = []

    # Trainer, exactly the stage's arguments (no probe callback)
    import tempfile

    model = build_model(tok, seed=3)
    mcfg = load_params().model
    ds = ws._SFTDataset([(format_prompt(p["question"], mcfg), p["answer"]) for p in train], tok, 192)
    with tempfile.TemporaryDirectory() as d:
        args = TrainingArguments(
            output_dir=d, max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=2e-3,
            warmup_steps=30, lr_scheduler_type="constant_with_warmup", logging_steps=25, save_strategy="no",
            report_to=[], seed=3, data_seed=3, use_cpu=True, dataloader_num_workers=0, remove_unused_columns=False,
            disable_tqdm=True,
        )
        tr = Trainer(model=model, args=args, train_dataset=ds, data_collator=ws._collate(tok.pad_token_id))
        t, c = time.time(), time.process_time()
        tr.train()
        total, ctotal = time.time() - t, time.process_time() - c
    rows.append(("Trainer (stage args, incl. its start-up)", total / steps, ctotal / steps))

    def plain(label, batching, compile_=False, bf16=False, fused=False, warm=5, attn="sdpa", cache=False, **shape):
        model = build_model(tok, seed=3, attn=attn, **shape)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, fused=fused or None)
        stream = batch_stream(items, batch_size, batching, 3, tok.pad_token_id)

        def f(b):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(**b, use_cache=cache).loss

        g = torch.compile(f, dynamic=True) if compile_ else f
        tc = time.time()
        for _ in range(warm):
            loss = g(next(stream))
            loss.backward()
            opt.step()
            opt.zero_grad()
        warm_s = time.time() - tc
        toks = sols = 0
        t, c = time.time(), time.process_time()
        for _ in range(steps):
            b = next(stream)
            toks += b["input_ids"].numel()
            sols += int((b["labels"] == tok.eos_token_id).sum())
            loss = g(b)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        dt, dc = (time.time() - t) / steps, (time.process_time() - c) / steps
        rows.append((label + (f" (first {warm} steps {warm_s:.0f} s)" if compile_ else ""), dt, dc, toks / steps, sols / steps))

    plain("plain loop, padded + mask (= stage collate), KV cache on", "pad", cache=True)
    plain("plain loop, padded + mask, use_cache=False", "pad")
    plain("plain loop, length buckets (no pad, no mask)", "bucket")
    plain("plain loop, packed 128, no mask between solutions", "pack128")
    plain("plain loop, packed 128, block-diagonal mask (doc128)", "doc128")
    plain("plain loop, doc128, eager attention", "doc128", attn="eager")
    plain("plain loop, doc128, fused AdamW", "doc128", fused=True)
    plain("plain loop, doc128, bf16 autocast", "doc128", bf16=True)
    plain("plain loop, doc128, eager, bf16 autocast", "doc128", bf16=True, attn="eager")
    plain("plain loop, doc128, 2 layers x 192 (0.99M), fp32 sdpa", "doc128", hidden=192, layers=2, heads=4, inter=576)
    plain("recommended: doc128, 2 x 192, eager, bf16", "doc128", bf16=True, attn="eager", hidden=192, layers=2, heads=4, inter=576)
    if compile_too:
        plain("plain loop, doc128, torch.compile", "doc128", compile_=True, warm=10)
    print(f"\nSFT step at batch {batch_size}, {threads} thread(s), {steps} timed steps")
    print(f"{'variant':60s} {'wall s/step':>11s} {'cpu s/step':>10s} {'tokens/step':>11s} {'solutions/step':>14s}")
    print(f"{rows[0][0]:60s} {rows[0][1]:11.4f} {rows[0][2]:10.4f}")
    for r in rows[1:]:
        print(f"{r[0]:60s} {r[1]:11.4f} {r[2]:10.4f} {r[3]:11.0f} {r[4]:14.1f}")


def threads_bench(steps: int = 30, repeats: int = 3) -> None:
    """Seconds per step of the recommended recipe's training step at 1 and 2 threads, alternated."""
    tok = build_tokenizer(100)
    train, _, _ = data(3, 4000)
    items = encode(tok, train)
    r = Recipe(**RECOMMENDED)
    res: dict = {}
    for rep in range(repeats):
        for th in (1, 2):
            torch.set_num_threads(th)
            model = build_model(tok, r.hidden, r.layers, r.heads, r.inter, seed=3, attn=r.attn)
            opt = torch.optim.AdamW(model.parameters(), lr=r.lr)
            stream = batch_stream(items, r.batch_size, r.batching, rep, tok.pad_token_id)
            for i in range(steps + 3):
                if i == 3:
                    t, c = time.time(), time.process_time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=r.bf16):
                    loss = model(**next(stream), use_cache=False).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), r.clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
            res.setdefault(th, []).append(((time.time() - t) / steps, (time.process_time() - c) / steps))
    for th, v in res.items():
        print(f"threads {th}: wall s/step " + " ".join(f"{w:.3f}" for w, _ in v) + "   cpu s/step " + " ".join(f"{c:.3f}" for _, c in v))


# ----------------------------------------------------------------------------- CLI
def print_run(res: dict, label="") -> None:
    print(f"\n{label} steps={res['steps']} wall={res['wall_s']}s (probe {res['probe_total_s']}s) "
          f"s/step={res['s_per_step']} final_probe={res['final_probe']}")
    print(f"{'step':>6s} {'train_s':>8s} {'wall_s':>8s} {'loss':>7s} {'tf':>6s} {'probe':>6s}")
    for c in res["curve"]:
        if not isinstance(c, dict):  # Trainer runs: (step, probe)
            print(f"{c[0]:6d} {'':8s} {'':8s} {'':7s} {'':6s} {c[1]:6.3f}")
        else:
            print(f"{c['step']:6d} {c['train_s']:8.1f} {c['wall_s']:8.1f} {c['loss']:7.4f} {c['tf']:6.3f} "
                  f"{c.get('probe', float('nan')):6.3f}")
    if "held_out" in res:
        h = res["held_out"]
        print("held-out greedy by chain length 2..8: " + " ".join(f"{h[k]:.2f}" for k in range(2, 9)) + f"  all {h['all']:.3f}")
        if "prefix_ok" in h:
            print(f"held-out failures: {h['prefix_ok']:.2f} have a right first step, first error at step {h['first_err']:.2f} on average, "
                  f"{h['len_ok']:.2f} have the right number of steps")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["profile", "curve", "baseline", "recipe", "threads"])
    ap.add_argument("--trainer", action="store_true", help="curve/recipe through the transformers Trainer (doc packing only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="append one JSON line per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[3])
    ap.add_argument("--label", default="")
    ap.add_argument("--no_compile", action="store_true", help="profile: skip torch.compile (~1 min)")
    for f_name, f_def in Recipe.__dataclass_fields__.items():
        if f_name in ("log", "seed", "threads"):
            continue
        default = f_def.default
        if isinstance(default, bool):
            ap.add_argument(f"--{f_name}", type=lambda s: s.lower() in ("1", "true", "yes"), default=None)
        elif isinstance(default, tuple):
            ap.add_argument(f"--{f_name}", type=float, nargs=2, default=None)
        else:
            ap.add_argument(f"--{f_name}", type=type(default), default=None)
    a = ap.parse_args(argv)
    if a.cmd == "threads":
        threads_bench()
        return
    if a.cmd == "profile":
        profile(a.threads, compile_too=not a.no_compile)
        return
    summary = []
    for seed in a.seeds:
        if a.cmd == "baseline":
            res = trainer_run(seed=seed, threads=a.threads)
            res["recipe"] = {"trainer": "params.yaml", "seed": seed, "threads": a.threads}
        else:
            kw = dict(RECOMMENDED) if a.cmd == "recipe" else {}
            kw.update({k: getattr(a, k) for k in Recipe.__dataclass_fields__ if k not in ("seed", "threads", "log") and getattr(a, k, None) is not None})
            r = Recipe(seed=seed, threads=a.threads, **{k: (tuple(v) if k == "betas" else v) for k, v in kw.items()})
            if a.trainer:
                res = trainer_packed(r)
            else:
                res = train_loop(r)
                res.pop("model"), res.pop("tokenizer")
        res["label"] = a.label or a.cmd
        print_run(res, f"[{res['label']} seed={seed} threads={a.threads}]")
        if a.out:
            with open(a.out, "a") as fh:
                fh.write(json.dumps(res) + "\n")
        summary.append((seed, res))
    print(f"\n{'seed':>4s} {'steps':>5s} {'wall_s':>7s} {'probe_s':>7s} {'cpu_s':>6s} {'probe':>6s} {'held-out':>8s}   by chain length 2..8"
          f"   (threads={a.threads})")
    for seed, res in summary:
        h = res.get("held_out", {})
        print(f"{seed:4d} {res['steps']:5d} {res['wall_s']:7.1f} {res['probe_total_s']:7.1f} {res.get('cpu_s', float('nan')):6.1f} "
              f"{res['final_probe'] or float('nan'):6.3f} {h.get('all', float('nan')):8.3f}   " + " ".join(f"{h.get(k, float('nan')):.2f}" for k in range(2, 9)))


# The recommended recipe (measured 2026-11-27; see the module docstring for the commands).
RECOMMENDED: dict = dict(
    hidden=192, layers=2, heads=4, inter=576,  # 0.99M params: 2 wide layers instead of 4 x 128
    batch_size=32, lr=1e-3, schedule="constant", warmup=30, betas=(0.9, 0.999), weight_decay=0.0, clip=1.0,
    batching="doc128",  # whole solutions packed into 128-token rows, block-diagonal attention
    bf16=True, attn="eager",  # CPU autocast bf16 (AVX512-BF16) + eager attention: ~2.2x per step
    # probe: the stage's greedy probe (200 problems), every 10 steps once the mean train loss of the
    # last 25 steps is below 0.25 (accuracy is then ~0.05-0.15); nothing before that
    check_every=10, probe_below_loss=0.25, tf_probe=False, target=0.3, stop_on="probe", max_steps=1000,
)


if __name__ == "__main__":
    main()
