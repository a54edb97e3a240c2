"""Static checks of the paper notebooks in ``notebooks/`` (no kernel is started).

Executing them is nbval's job (``make test-notebooks``); here we check what must hold for every commit:
order and names, the Colab badge and install cell pointing at the one repository URL of ``pyproject.toml``,
a ``parameters`` cell holding literals only, no function or class definitions, and no committed outputs.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXPECTED = (
    "01_create_input_data.ipynb",
    "02_embed_mat2spec.ipynb",
    "03_embed_mat2spec_simpleRDF.ipynb",
    "04_embed_phdos.ipynb",
)
COMMON_PARAMETERS = {"dataset", "mode", "seed", "smoke", "run_name"}
TRAINING_PARAMETERS = COMMON_PARAMETERS | {"preset", "split", "epochs", "train"}


def pyproject_repository_url() -> str:
    """``[project.urls] Repository`` read straight from pyproject.toml (independent of s2p_utils.project).

    A small parser of that one table (``tomllib`` needs Python 3.11; the project supports 3.10).
    """
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    table = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert table, "pyproject.toml has no [project.urls] table"
    match = re.search(r'^\s*Repository\s*=\s*"([^"]+)"', table.group(1), re.M)
    assert match, "pyproject.toml [project.urls] has no Repository entry"
    return match.group(1).rstrip("/")


def load(name: str) -> dict:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def as_python(text: str) -> str:
    """IPython cell text → plain Python: ``%magic`` / ``!shell`` lines become ``pass`` (same indentation)."""
    return "\n".join(
        re.sub(r"^(\s*)[%!].*$", r"\1pass", line) if re.match(r"^\s*[%!]", line) else line
        for line in text.splitlines()
    )


def parameters_of(notebook: dict) -> dict[str, object]:
    cell = code_cells(notebook)[1]
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source(cell)).body
        if isinstance(node, ast.Assign)
    }


@pytest.fixture(scope="module")
def repository_url() -> str:
    return pyproject_repository_url()


def test_notebooks_are_the_four_in_order():
    found = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert tuple(found) == EXPECTED
    assert [int(name[:2]) for name in found] == [1, 2, 3, 4]


def test_project_module_reads_the_pyproject_url(repository_url):
    from s2p_utils import project

    assert project.REPOSITORY_URL == repository_url
    owner_repo = repository_url.removeprefix("https://github.com/")
    assert project.colab_badge_url("04_embed_phdos.ipynb") == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/04_embed_phdos.ipynb"
    )
    assert f"git+{repository_url}" in project.install_command()


@pytest.mark.parametrize("name", EXPECTED)
def test_valid_nbformat_with_python3_kernel(name):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", EXPECTED)
def test_colab_badge_and_install_cell_use_the_repository_url(name, repository_url):
    notebook = load(name)
    first = notebook["cells"][0]
    assert first["cell_type"] == "markdown"
    owner_repo = repository_url.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{name}"
    assert f"]({badge})" in source(first), f"{name}: first cell lacks the Colab badge {badge}"

    setup = source(code_cells(notebook)[0])
    assert "import s2p_utils" in setup
    assert re.search(r"^\s+%pip install -q \"git\+" + re.escape(repository_url) + r"\"\s*$", setup, re.M), (
        f'{name}: the setup cell must `%pip install -q "git+{repository_url}"` when s2p_utils is missing'
    )
    tree = ast.parse(as_python(setup))
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.Try)]
    assert handlers and any(
        isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in handlers[0].handlers
    ), f"{name}: install only on ImportError (no-op locally)"

    # Every GitHub URL anywhere in the notebook is the project's repository.
    text = "\n".join(source(cell) for cell in notebook["cells"])
    for url in re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", text):
        assert url.rstrip(".") == repository_url, f"{name}: foreign repository URL {url}"
    for url in re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)", text):
        assert url == owner_repo, f"{name}: Colab link to {url}"


@pytest.mark.parametrize("name", EXPECTED)
def test_second_code_cell_is_the_only_parameters_cell_with_literals_only(name):
    notebook = load(name)
    tagged = [
        i for i, cell in enumerate(code_cells(notebook)) if "parameters" in cell["metadata"].get("tags", [])
    ]
    assert tagged == [1], f"{name}: exactly the second code cell must be tagged 'parameters' (got {tagged})"
    body = ast.parse(source(code_cells(notebook)[1])).body
    assert body, f"{name}: empty parameters cell"
    for node in body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{name}: {ast.unparse(node)!r}"
        assert isinstance(node.targets[0], ast.Name), f"{name}: {ast.unparse(node)!r}"
        ast.literal_eval(node.value)  # raises ValueError on anything but a literal
    parameters = parameters_of(notebook)
    required = COMMON_PARAMETERS if name.startswith("01_") else TRAINING_PARAMETERS
    assert required <= set(parameters), f"{name}: missing parameters {sorted(required - set(parameters))}"
    assert parameters["mode"] in {"legacy", "fixed"}
    assert parameters["smoke"] is None, f"{name}: smoke must default to None (follow $S2P_SMOKE)"
    if "train" in parameters:
        assert parameters["train"] is True


@pytest.mark.parametrize("name", EXPECTED)
def test_no_definitions_and_calls_into_s2p_utils(name):
    notebook = load(name)
    imported: set[str] = set()
    for cell in code_cells(notebook):
        tree = ast.parse(as_python(source(cell)))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda), (
                f"{name}: definitions belong in s2p_utils, found {type(node).__name__} in cell {cell.get('id')}"
            )
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "s2p_utils" in imported
    assert not imported & {"tensorflow", "keras", "torch", "sklearn"}, (
        f"{name}: model code belongs in s2p_utils"
    )


@pytest.mark.parametrize("name", EXPECTED)
def test_outputs_are_stripped(name):
    notebook = load(name)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], (
                f"{name}: committed outputs in cell {cell.get('id')} (run nbstripout)"
            )
            assert cell.get("execution_count") is None, f"{name}: execution_count in cell {cell.get('id')}"
        assert not {"execution", "papermill", "collapsed", "scrolled"} & set(cell.get("metadata", {}))
        assert "attachments" not in cell or not cell["attachments"]
    assert "papermill" not in notebook["metadata"] and "widgets" not in notebook["metadata"]


def test_reproduce_passes_only_declared_parameters():
    from s2p_utils.reproduce import NOTEBOOK_RUNS

    for run in NOTEBOOK_RUNS:
        parameters = parameters_of(load(run.notebook))
        passed = set(run.parameters) | ({"dataset"} if run.dataset is None else set())
        assert passed <= set(parameters), (
            f"{run.notebook}: reproduce passes undeclared {passed - set(parameters)}"
        )
