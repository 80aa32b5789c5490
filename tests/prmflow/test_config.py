import pytest

from prmflow.config import ConfigError, apply_overrides, load_params, parse_override, validate_params


def test_defaults_validate_and_repo_params_file_loads():
    p = validate_params({})
    assert p.data.source == "synthetic" and p.model.name_or_path is None
    repo = load_params("params.yaml")
    assert repo.data.num_train > 0


def test_unknown_key_names_dotted_path():
    with pytest.raises(ConfigError, match=r"params.yaml: data\.bogus: unknown key"):
        validate_params({"data": {"bogus": 1}})


def test_wrong_type_names_dotted_path():
    with pytest.raises(ConfigError, match=r"warmstart\.max_steps: .*integer"):
        validate_params({"warmstart": {"max_steps": "many"}})
    with pytest.raises(ConfigError, match=r"model\.tiny\.hidden_size"):
        validate_params({"model": {"tiny": {"hidden_size": -1}}})


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="min_steps"):
        validate_params({"data": {"min_steps": 5, "max_steps": 3}})
    with pytest.raises(ConfigError, match="needs data.path"):
        validate_params({"data": {"source": "gsm8k"}})
    with pytest.raises(ConfigError, match="disjoint"):
        validate_params({"data": {"train_seed": 3, "eval_seed": 3}})


def test_overrides_use_dvc_syntax(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("data:\n  num_train: 10\n")
    p = load_params(f, ["data.num_train=500", "model.name_or_path=gpt2", "evaluate.extra_eval=x.jsonl"])
    assert p.data.num_train == 500 and p.model.name_or_path == "gpt2"
    assert p.evaluate.extra_eval == "x.jsonl"
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["data.num_train"])
    with pytest.raises(ConfigError, match=r"data\.num_train"):
        load_params(f, ["data.num_train=lots"])


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
