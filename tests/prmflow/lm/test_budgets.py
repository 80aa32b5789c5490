"""Token budgets checked against the references, or derived from them."""

from __future__ import annotations

import pytest

from prmflow.config import ConfigError, Params
from prmflow.lm.budgets import MAX_CUT_SHARE, check_all, derive_budget, resolve_budget, resolve_setting


def test_a_budget_that_cuts_more_than_a_quarter_of_the_references_fails_naming_the_setting():
    lengths = [40, 60, 90, 100, 120, 150, 200, 96]  # 4 of 8 longer than 96
    with pytest.raises(ConfigError, match=r"^label\.max_new_tokens: 96 tokens cut 4 of 8 reference solutions \(50%; .*null .*\(316\)"):
        resolve_budget("label.max_new_tokens", 96, lengths)
    ok = resolve_budget("label.max_new_tokens", 150, lengths)  # cuts 1 of 8
    assert (ok.value, ok.derived, ok.cut) == (150, False, 1)
    assert ok.metrics() == {
        "budget.label.max_new_tokens": 150,
        "budget.label.max_new_tokens.derived": 0,
        "budget.label.max_new_tokens.references_cut": 0.125,
    }
    assert MAX_CUT_SHARE == 0.25
    assert resolve_budget("x.max_new_tokens", 120, [100] * 3 + [200]).cut == 1  # exactly a quarter passes


def test_null_derives_it_from_the_longest_reference():
    b = resolve_budget("rl.max_new_tokens", None, [30, 60, 40])
    assert (b.value, b.derived, b.cut) == (106, True, 0)  # ceil(1.5 * 60) + 16
    with pytest.raises(ConfigError, match="no reference solutions"):
        derive_budget([])


class Words:
    """A whitespace tokenizer: one token per word."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": list(range(len(text.split())))}


def test_settings_resolve_into_params_and_the_warm_start_checks_them_all():
    train = [{"answer": "w " * 9 + "w"}] * 4  # 10 words + EOS = 11 tokens
    params = Params.model_validate({"rl": {"max_new_tokens": None}, "label": {"max_new_tokens": 12}, "evaluate": {"max_new_tokens": 50}})
    new, b = resolve_setting(params, "rl.max_new_tokens", train, Words())
    assert new.rl.max_new_tokens == b.value == 33 and params.rl.max_new_tokens is None
    budgets = check_all(params, {"train": train, "eval": train}, Words())
    assert {k: v.value for k, v in budgets.items()} == {
        "label.max_new_tokens": 12,
        "rl.max_new_tokens": 33,
        "prm.max_new_tokens": 96,
        "evaluate.max_new_tokens": 50,
    }
    bad = Params.model_validate({"prm": {"max_new_tokens": 8}})
    with pytest.raises(ConfigError, match=r"^prm\.max_new_tokens: 8 tokens cut 4 of 4"):
        check_all(bad, {"train": train, "eval": train}, Words())
