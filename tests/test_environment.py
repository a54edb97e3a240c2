"""pyproject.toml, environment.yml and constraints.txt describe one environment.

conda cannot run here, so environment.yml is checked against pyproject.toml instead: the same packages with
the same bounds (the dependencies plus the extras a conda user gets). constraints.txt, written by
``make lock`` and used by every ``make`` target that installs, must pin each dependency at a version the
bounds allow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # PyYAML: pre-commit (dev extra) depends on it
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
ENVIRONMENT = REPO / "environment.yml"
CONSTRAINTS = REPO / "constraints.txt"

ENV_EXTRAS = ("tf", "dev", "notebooks", "docs")  # environment.yml: any-platform TensorFlow, no GPU, no mp-api
MAKE_EXTRAS = ("tf-cpu", "dev", "notebooks", "docs")  # what `make install` installs with constraints.txt
# pip requirements with extras that conda-forge ships as separate packages
CONDA_SPLIT = {"dask[distributed]": ("dask", "distributed")}


def project_requirements(pyproject_text: str, extras: tuple[str, ...]) -> list[Requirement]:
    """The dependencies of pyproject.toml plus those of ``extras``."""
    project = tomllib.loads(pyproject_text)["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


def pyproject_bounds(pyproject_text: str) -> dict[str, SpecifierSet]:
    """Package name (conda spelling) → version bounds, from pyproject.toml."""
    bounds = {}
    for req in project_requirements(pyproject_text, ENV_EXTRAS):
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]" if req.extras else name
        for conda_name in CONDA_SPLIT.get(key, (key,)):
            bounds[conda_name] = req.specifier
    return bounds


def environment_specs(environment_text: str) -> tuple[list[str], list[str]]:
    """The conda and the pip entries of environment.yml."""
    conda, pip = [], []
    for dep in yaml.safe_load(environment_text)["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            conda.append(dep)
    return conda, pip


def mismatches(environment_text: str, pyproject_text: str) -> list[str]:
    """Every way environment.yml and pyproject.toml disagree (empty when they agree)."""
    conda, pip = environment_specs(environment_text)
    problems = []
    env_bounds: dict[str, SpecifierSet] = {}
    for spec in conda + pip:
        if spec == "pip" or spec.startswith(("python=", "-e ")):
            continue
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name in env_bounds:
            problems.append(f"{name}: listed twice in environment.yml")
        env_bounds[name] = req.specifier
    project_bounds = pyproject_bounds(pyproject_text)
    for name in sorted(env_bounds.keys() | project_bounds.keys()):
        if name not in env_bounds:
            problems.append(f"{name}: missing from environment.yml (pyproject.toml: {project_bounds[name]})")
        elif name not in project_bounds:
            problems.append(f"{name}: in environment.yml only")
        elif env_bounds[name] != project_bounds[name]:
            problems.append(
                f"{name}: environment.yml {env_bounds[name]}, pyproject.toml {project_bounds[name]}"
            )
    if "-e ." not in pip:
        problems.append("environment.yml does not install the package (`-e .` under pip)")
    pythons = [spec.split("=", 1)[1] for spec in conda if spec.startswith("python=")]
    requires_python = SpecifierSet(tomllib.loads(pyproject_text)["project"]["requires-python"])
    if len(pythons) != 1 or Version(pythons[0]) not in requires_python:
        problems.append(f"environment.yml python {pythons} outside requires-python {requires_python}")
    return problems


def test_environment_yml_matches_pyproject():
    assert mismatches(ENVIRONMENT.read_text(), PYPROJECT.read_text()) == []


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        ("env", "numpy>=1.26", "numpy>=1.25", "numpy: environment.yml >=1.25, pyproject.toml >=1.26"),
        ("env", "  - distributed>=2024.1\n", "", "distributed: missing from environment.yml"),
        ("env", "  - pre-commit>=3\n", "", "pre-commit: missing from environment.yml"),
        ("env", "  - pip:\n", "  - rich>=13\n  - pip:\n", "rich: in environment.yml only"),
        ("env", "      - -e .\n", "", "does not install the package"),
        ("env", "python=3.11", "python=3.9", "outside requires-python"),
        ("pyproject", '"pooch>=1.8"', '"pooch>=1.9"', "pooch: environment.yml >=1.8, pyproject.toml >=1.9"),
        ("pyproject", '"h5py>=3.10",', '"h5py>=3.10", "rich>=13",', "rich: missing from environment.yml"),
    ],
)
def test_mismatch_is_reported(file, old, new, problem):
    texts = {"env": ENVIRONMENT.read_text(), "pyproject": PYPROJECT.read_text()}
    assert old in texts[file]
    texts[file] = texts[file].replace(old, new)
    found = mismatches(texts["env"], texts["pyproject"])
    assert len(found) == 1 and problem in found[0], found


def test_tensorflow_extras_share_one_bound():
    reqs = project_requirements(PYPROJECT.read_text(), ("tf", "tf-cpu", "gpu"))
    bounds = {str(req): req.specifier for req in reqs if req.name.startswith("tensorflow")}
    assert len(bounds) == 4 and len(set(bounds.values())) == 1, bounds


def pins() -> dict[str, Version]:
    """constraints.txt: package name → pinned version."""
    pinned = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and not req.url, line
            pinned[canonicalize_name(req.name)] = Version(spec.version)
    return pinned


def test_constraints_pin_every_dependency_within_its_bounds():
    pinned = pins()
    assert "struct2prop" not in pinned
    for req in project_requirements(PYPROJECT.read_text(), MAKE_EXTRAS):
        name = canonicalize_name(req.name)
        if req.marker is None:  # platform-specific ones (tensorflow vs tensorflow-cpu) may be absent
            assert name in pinned, f"{name} is not pinned in constraints.txt: run `make lock`"
        if name in pinned:
            assert pinned[name] in req.specifier, (
                f"constraints.txt pins {name}=={pinned[name]}, outside {req}"
            )
