"""Project facts defined once: the repository URL (from ``pyproject.toml`` ``[project.urls] Repository``).

Notebook badges and install cells must use this URL; ``tests/test_notebooks_meta.py`` checks it.
The value is read from the installed distribution's metadata (``Project-URL: Repository, <url>``), so it
works from an installed wheel as well as from an editable checkout.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, metadata

__all__ = ["DISTRIBUTION", "REPOSITORY_URL", "repository_url", "colab_badge_url", "install_command"]

DISTRIBUTION = "struct2prop"


def repository_url(distribution: str = DISTRIBUTION) -> str:
    """The ``Repository`` entry of ``[project.urls]``, without a trailing slash or ``.git``.

    Raises ``RuntimeError`` when the package is not installed or declares no ``Repository`` URL.
    """
    try:
        entries = metadata(distribution).get_all("Project-URL") or []
    except PackageNotFoundError:
        raise RuntimeError(
            f"distribution {distribution!r} is not installed; run `pip install -e .` (or `make install`)"
        ) from None
    for entry in entries:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository" and url.strip():
            url = url.strip().rstrip("/")
            return url[: -len(".git")] if url.endswith(".git") else url
    raise RuntimeError(f"{distribution}: pyproject.toml [project.urls] has no 'Repository' entry")


REPOSITORY_URL: str = repository_url()


def _owner_repo(url: str = REPOSITORY_URL) -> str:
    prefix = "https://github.com/"
    if not url.startswith(prefix):
        raise ValueError(f"repository URL {url!r} is not a https://github.com/<owner>/<repo> URL")
    return url[len(prefix) :]


def colab_badge_url(notebook: str, *, branch: str = "main") -> str:
    """The Colab URL that opens ``notebooks/<notebook>`` of the repository on ``branch``.

    >>> colab_badge_url("04_embed_phdos.ipynb")  # doctest: +SKIP
    'https://colab.research.google.com/github/<owner>/<repo>/blob/main/notebooks/04_embed_phdos.ipynb'
    """
    name = notebook.rsplit("/", 1)[-1]
    return f"https://colab.research.google.com/github/{_owner_repo()}/blob/{branch}/notebooks/{name}"


def install_command(*, quiet: bool = True) -> str:
    """The pip command a notebook runs when ``s2p_utils`` is missing (e.g. on Colab)."""
    return f'pip install {"-q " if quiet else ""}"git+{REPOSITORY_URL}"'
