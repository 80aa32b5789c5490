import copy
from pathlib import Path

import pytest
import yaml

from prmflow.config import ConfigError, Params, apply_overrides, load_params, parse_override, validate_params

SHIPPED = Path(__file__).resolve().parents[2] / "params.yaml"


def shipped(**sections) -> dict:
    """The shipped params.yaml with some keys changed (``sections``: ``{section: {key: value}}``)."""
    raw = yaml.safe_load(SHIPPED.read_text())
    for name, keys in sections.items():
        raw[name] = {**raw[name], **keys} if isinstance(keys, dict) else keys
    return raw


def test_repo_params_file_loads():
    repo = load_params(SHIPPED)
    assert repo.data.source == "synthetic" and repo.model.name_or_path is None
    assert repo.data.num_train > 0


def test_code_defaults_equal_the_shipped_params_yaml():
    # Params() is what a section's missing key falls back to: it must be what the file says
    raw = yaml.safe_load(SHIPPED.read_text())
    defaults, from_file = Params(), validate_params(raw, str(SHIPPED))
    for name in Params.model_fields:
        assert getattr(defaults, name) == getattr(from_file, name), f"{name}: code defaults differ from params.yaml"

    def keys(d: dict, prefix="") -> set[str]:
        return {prefix + k for k in d} | {x for k, v in d.items() if isinstance(v, dict) for x in keys(v, f"{prefix}{k}.")}

    assert keys(raw) == keys(defaults.model_dump()), "params.yaml must list every key"


@pytest.mark.parametrize("section", list(Params.model_fields))
def test_every_section_is_required(section):
    raw = shipped()
    del raw[section]
    with pytest.raises(ConfigError, match=rf"^params\.yaml: {section}: missing"):
        validate_params(raw)


def test_unknown_key_names_dotted_path():
    with pytest.raises(ConfigError, match=r"params.yaml: data\.bogus: unknown key"):
        validate_params(shipped(data={"bogus": 1}))


def test_wrong_type_names_dotted_path():
    with pytest.raises(ConfigError, match=r"warmstart\.max_steps: .*integer"):
        validate_params(shipped(warmstart={"max_steps": "many"}))
    with pytest.raises(ConfigError, match=r"model\.tiny\.hidden_size"):
        validate_params(shipped(model={"tiny": {"hidden_size": -1}}))


@pytest.mark.parametrize(
    "override, key",
    [
        ("rl.weights.process=.nan", "rl.weights.process"),
        ("evaluate.gate_z=.inf", "evaluate.gate_z"),
        ("rl.temperature=.inf", "rl.temperature"),
        ("prm.learning_rate=.nan", "prm.learning_rate"),
    ],
)
def test_non_finite_numbers_are_refused(override, key):
    with pytest.raises(ConfigError, match=rf"params\.yaml: {key}: Input should be a finite number"):
        load_params(SHIPPED, [override])


@pytest.mark.parametrize(
    "override, key",
    [
        ("rl.steps=true", "rl.steps"),  # would run 1 step
        ("data.num_train='500'", "data.num_train"),  # a quoted number is a string
        ("rl.steps=5.5", "rl.steps"),
        ("evaluate.promote=1", "evaluate.promote"),
        ("model.name_or_path=7", "model.name_or_path"),
        ("rl.weights.outcome=yes", "rl.weights.outcome"),  # YAML's yes is True
    ],
)
def test_no_silent_coercion(override, key):
    with pytest.raises(ConfigError, match=rf"params\.yaml: {key}: Input should be a valid"):
        load_params(SHIPPED, [override])


def test_overrides_parsed_as_yaml_still_set_numbers():
    p = load_params(SHIPPED, ["rl.steps=5", "rl.weights.process=0", "evaluate.gate_z=1.5", "lifecycle.lock_timeout_s=60"])
    assert (p.rl.steps, p.rl.weight("process"), p.evaluate.gate_z, p.lifecycle.lock_timeout_s) == (5, 0.0, 1.5, 60.0)


def test_cross_field_checks():
    with pytest.raises(ConfigError, match="min_steps"):
        validate_params(shipped(data={"min_steps": 5, "max_steps": 3}))
    with pytest.raises(ConfigError, match="needs data.path"):
        validate_params(shipped(data={"source": "gsm8k"}))
    with pytest.raises(ConfigError, match="disjoint"):
        validate_params(shipped(data={"train_seed": 3, "eval_seed": 3}))


@pytest.mark.parametrize("scorer", ["oracle", "oracle_needed"])
def test_the_oracle_scorer_needs_synthetic_data(scorer):
    real = {"source": "jsonl", "path": "problems.jsonl"}
    with pytest.raises(
        ConfigError,
        match=rf"^params\.yaml: rl\.process_scorer: {scorer} scores steps with the synthetic task's oracle, but data\.source is 'jsonl'",
    ):
        validate_params(shipped(data=real, rl={"process_scorer": scorer}))
    validate_params(shipped(data=real, rl={"process_scorer": "reuse"}))  # any other scorer: fine
    validate_params(shipped(rl={"process_scorer": scorer}))  # synthetic (the shipped source): fine


def test_synthetic_problems_must_fit_the_26_variable_names():
    """Before this check these sizes reached the generator: an IndexError / ValueError traceback
    from the curate stage instead of a config error."""
    from prmflow.problems.synthetic import generate_dag_problems, generate_problems

    with pytest.raises(ConfigError, match=r"data: .*chain task has at most 25 steps"):
        validate_params(shipped(data={"max_steps": 26}))
    with pytest.raises(ConfigError, match=r"data: .*dag task has at most 12 steps"):
        validate_params(shipped(data={"task": "dag", "max_steps": 13}))
    with pytest.raises(ConfigError, match="can need 31 variables, more than 26 letters"):
        validate_params(shipped(data={"task": "dag", "max_steps": 12, "max_distractors": 6}))
    # the largest sizes allowed really generate (every step with a digit variable, all distractors)
    validate_params(shipped(data={"max_steps": 25}))
    generate_problems(50, 0, 25, 25)
    validate_params(shipped(data={"task": "dag", "max_steps": 10, "max_distractors": 5, "literal_var_prob": 1.0}))
    generate_dag_problems(200, 0, 10, 10, max_distractors=5, literal_var_prob=1.0)
    validate_params(shipped(data={"task": "dag", "max_steps": 12, "max_distractors": 6, "literal_var_prob": 0.0}))
    generate_dag_problems(200, 0, 12, 12, max_distractors=6, literal_var_prob=0.0)


def test_overrides_use_dvc_syntax(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(shipped(data={"num_train": 10})))
    p = load_params(f, ["data.num_train=500", "model.name_or_path=gpt2", "evaluate.extra_eval=x.jsonl"])
    assert p.data.num_train == 500 and p.model.name_or_path == "gpt2"
    assert p.evaluate.extra_eval == "x.jsonl"
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["data.num_train"])
    with pytest.raises(ConfigError, match=r"data\.num_train"):
        load_params(f, ["data.num_train=lots"])
    assert copy.deepcopy(shipped()) == shipped()  # the helper does not leak changes


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_exponent_floats_without_a_dot_are_numbers_as_in_dvc():
    # YAML 1.1 (PyYAML) reads 1e-4 as a string; DVC (YAML 1.2) and users read a number
    from prmflow.config import load_params
    from tests.conftest import ROOT

    assert load_params(ROOT / "params.yaml", ["rl.learning_rate=1e-4"]).rl.learning_rate == 1e-4
    assert load_params(ROOT / "params.yaml", ["rl.learning_rate=3E-5"]).rl.learning_rate == 3e-5


@pytest.mark.parametrize(
    ("prompts", "oversample", "dynamic", "per_round"),
    [(16, 2.0, True, 32), (5, 1.5, True, 8), (16, 1.0, True, 16), (16, 2.0, False, 16)],
)
def test_a_sampling_round_draws_oversample_times_the_step_prompts(prompts, oversample, dynamic, per_round):
    """rl.oversample (dynamic sampling only): ceil(oversample x prompts_per_step) problems a round."""
    rl = {"prompts_per_step": prompts, "oversample": oversample, "dynamic_sampling": dynamic}
    assert validate_params(shipped(rl=rl)).rl.prompts_per_round == per_round
    with pytest.raises(ConfigError, match="oversample"):
        validate_params(shipped(rl={"oversample": 0.5}))
