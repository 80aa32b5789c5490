"""``dvc.yaml`` lists every project file a stage's code imports, so a code change re-runs it."""

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("prmflow", "reward", "tasks")


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name (``None`` outside the project)."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.exists():
            return f
    return None


VALIDATION_ONLY = "# dvc: validation only"
"""An import marked so (config validators that check a name against a registry) only decides
whether params are accepted, never what a stage outputs: it is not a dep."""


def imported_modules(path: Path) -> set[str]:
    """Dotted names a file imports (top level and inside functions), with their parent packages."""
    text = path.read_text()
    lines = text.splitlines()
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and VALIDATION_ONLY in lines[node.lineno - 1]:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # submodules imported by name
    out = set()
    for n in names:
        parts = n.split(".")
        out |= {".".join(parts[: i + 1]) for i in range(len(parts))}
    return out


def closure(module: str) -> set[Path]:
    """Every project file that ``python -m <module>`` executes (its packages' ``__init__`` too)."""
    parts = module.split(".")
    seen, todo = set(), [module_file(".".join(parts[: i + 1])) for i in range(len(parts))]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo += [m for n in imported_modules(f) if (m := module_file(n)) is not None]
    return seen


def covered(f: Path, deps: list[str]) -> bool:
    rel = f.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


def test_every_stage_depends_on_the_code_it_imports_and_nothing_else():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    problems = []
    for name, stage in stages.items():
        module = stage["cmd"].split("python -m ")[1].split()[0]
        code = closure(module)
        deps = [d for d in stage.get("deps", []) if not d.startswith("$")]
        missing = sorted(str(f.relative_to(ROOT)) for f in code if not covered(f, deps))
        code_deps = [d for d in deps if d.endswith(".py") or d.split("/")[0] in PACKAGES]
        extra = sorted(d for d in code_deps if not any(covered(f, [d]) for f in code))
        if missing or extra:
            problems.append(f"{name}: missing {missing}, not imported {extra}")
    assert not problems, "dvc.yaml code deps differ from the imports:\n" + "\n".join(problems)


def code_deps(module: str) -> list[str]:
    """The sorted code deps of a stage module (``python tests/test_dvc_yaml.py`` prints them all)."""
    return sorted(str(f.relative_to(ROOT)) for f in closure(module))


if __name__ == "__main__":
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        print(f"{name}:\n" + "".join(f"      - {d}\n" for d in code_deps(stage["cmd"].split("python -m ")[1].split()[0])))


def test_the_walker_sees_function_level_and_from_imports():
    # tasks/label.py imports prmflow.labeling.pipeline, which imports reward.outcome (a light
    # module whose heavy import, math_verify, happens inside a function).
    files = {str(f.relative_to(ROOT)) for f in closure("tasks.label")}
    assert {"tasks/label.py", "prmflow/labeling/pipeline.py", "reward/outcome.py", "prmflow/__init__.py", "tasks/__init__.py"} <= files
    assert "tasks/curate.py" not in files  # no stage imports another
