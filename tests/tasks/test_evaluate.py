"""Stage ``evaluate``: each policy is run once, told apart by its weights, not its folder."""

from prmflow.config import Params
from prmflow.lm.models import build_tiny_model, build_tokenizer
from tasks.evaluate import PolicyRunner


def test_a_champion_with_the_base_weights_is_run_once(tmp_path, monkeypatch):
    tok = build_tokenizer()
    params = Params.model_validate({"model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}}})
    for name, seed in (("base", 0), ("champion", 0), ("policy", 1)):  # the champion: the base saved again
        build_tiny_model(tok, params.model, seed=seed).save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    runner = PolicyRunner(params, problems=[])
    ran = []
    monkeypatch.setattr(runner, "_run", lambda path, problems: ran.append(path.name) or len(ran))
    assert runner(tmp_path / "base") == runner(tmp_path / "champion") == 1
    assert runner(tmp_path / "policy") == 2 and ran == ["base", "policy"]
