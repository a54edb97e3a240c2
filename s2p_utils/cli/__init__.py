"""The ``s2p`` command line.

``s2p data list`` / ``s2p data fetch NAME``   the dataset registry (sizes, licence, cached or not)
``s2p models list`` / ``s2p models fetch NAME`` the authors' pretrained models (``s2p predict authors:NAME``)
``s2p featurize FILES... --out F.npz``        per-atom PDFs and tokens for structure files
``s2p train PRESET``                           train (and evaluate) one preset, results under results/
``s2p predict [MODEL] FILES... --out F.csv``   spectra for any crystal files (default model: the packaged
                                               e3nn_phdos_mass phonon-DOS ensemble, with σ)
``s2p reproduce [--datasets ...]``             run the notebooks headless, write results/README.md
``s2p docs``                                   a static site of the executed notebooks (results/site)

Every ``cmd_*`` function and every ``print`` of the package lives in this package, one module per
command (:mod:`s2p_utils.cli.data`, ``.models``, ``.featurize``, ``.train``, ``.predict``, ``.reproduce``,
``.docs``); each is imported only when its command runs, so ``s2p data list`` never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module


def _lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return int(getattr(import_module(module), function)(args) or 0)

    return run


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (``--epochs``, ``--batch-size``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def _attach_negative_values(argv: Sequence[str], options: Sequence[str] = ("--grid",)) -> list[str]:
    """``--grid -10:10:500`` → ``--grid=-10:10:500``: argparse takes a value starting with ``-`` for an option."""
    args = list(argv)
    for index in range(len(args) - 2, -1, -1):
        if args[index] in options and args[index + 1].startswith("-"):
            args[index : index + 2] = [f"{args[index]}={args[index + 1]}"]
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s2p", description=__doc__.split("\n\n")[0])
    from s2p_utils import __version__

    parser.add_argument("--version", action="version", version=f"struct2prop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="list and fetch datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_list = data_sub.add_parser("list", help="every dataset with size, licence and cache state")
    data_list.add_argument(
        "--mirror", default=None, help="offline mirror directory (default $S2P_DATA_MIRROR)"
    )
    data_list.add_argument("--cache-dir", default=None, help="cache directory (default $S2P_CACHE_DIR)")
    data_list.set_defaults(func=_lazy("s2p_utils.cli.data", "cmd_list"))
    data_fetch = data_sub.add_parser("fetch", help="download (or copy from the mirror), verify and prepare")
    data_fetch.add_argument("name", nargs="+", help="dataset name(s), see `s2p data list`")
    data_fetch.add_argument("--mirror", default=None)
    data_fetch.add_argument("--cache-dir", default=None)
    data_fetch.add_argument(
        "--refresh", action="store_true", help="rebuild the prepared cache file (e.g. after corruption)"
    )
    data_fetch.set_defaults(func=_lazy("s2p_utils.cli.data", "cmd_fetch"))

    models = sub.add_parser("models", help="list and fetch the authors' pretrained models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_list = models_sub.add_parser("list", help="every pretrained model with grid, scaling and status")
    models_fetch = models_sub.add_parser("fetch", help="download (or copy from the mirror) and verify")
    models_fetch.add_argument("name", nargs="+", help="model name(s), see `s2p models list`")
    for command in (models_list, models_fetch):
        command.add_argument("--mirror", default=None, help="offline mirror (default $S2P_DATA_MIRROR)")
        command.add_argument("--cache-dir", default=None, help="cache directory (default $S2P_CACHE_DIR)")
    models_list.set_defaults(func=_lazy("s2p_utils.cli.models", "cmd_list"))
    models_fetch.set_defaults(func=_lazy("s2p_utils.cli.models", "cmd_fetch"))

    feat = sub.add_parser("featurize", help="per-atom PDFs and element tokens for structure files")
    feat.add_argument("files", nargs="+")
    feat.add_argument("--out", required=True, help="output .npz")
    feat.add_argument("--method", choices=["pdf", "simple_rdf"], default="pdf")
    feat.add_argument("--legacy", action="store_true", help="bit-exact original recipe")
    feat.add_argument("--n-jobs", type=int, default=1)
    feat.set_defaults(func=_lazy("s2p_utils.cli.featurize", "cmd_featurize"))

    train = sub.add_parser("train", help="train and evaluate one preset")
    train.add_argument("preset")
    train.add_argument("--split", default=None, help="split name (default: the preset's)")
    train.add_argument("--mode", choices=["legacy", "fixed"], default="fixed")
    train.add_argument(
        "--epochs", type=positive_int, default=None, help="maximum epochs, ≥ 1 (default: the preset's)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--run-name", default=None)
    train.add_argument("--results-dir", default=None)
    train.add_argument("--smoke", action="store_true", help="tiny data, 2 epochs")
    train.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="fine-tune: start every member from this model's weights (s2p:NAME, a models/<run>/ folder or "
        ".keras file) instead of a fresh initialisation",
    )
    train.set_defaults(func=_lazy("s2p_utils.cli.train", "cmd_train"))

    predict = sub.add_parser("predict", help="predict spectra for structure files")
    predict.add_argument(
        "files",
        nargs="+",
        metavar="[MODEL] FILE",
        help="optional model, then structure files (CIF, POSCAR, extxyz, pymatgen JSON, ...). MODEL: a saved "
        ".keras model, an ensemble folder of member*.keras (adds a calibrated std column), an authors' legacy "
        ".h5, authors:NAME (a published model) or s2p:NAME (a model shipped with the package; see "
        "`s2p models list`); default s2p:e3nn_phdos_mass, the packaged phonon-DOS ensemble",
    )
    predict.add_argument(
        "--out",
        default="predictions.csv",
        help="output CSV with columns id, file, grid, prediction (+ std, std_calibrated for an ensemble), "
        "unknown_elements, truncated_from; never replaced when no file gives a prediction (default: %(default)s)",
    )
    predict.add_argument(
        "--truncate", action="store_true", help="cut structures above max_atoms (with a warning)"
    )
    predict.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="network batch size (default: the one the model was evaluated with, from its record)",
    )
    predict.add_argument(
        "--grid",
        default=None,
        help="target grid for grid-input models: START:STOP:N (e.g. -10:10:500) or a .npy/.txt file",
    )
    predict.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="processes that read the structure files (-1: all cores; default: %(default)s)",
    )
    predict.set_defaults(func=_lazy("s2p_utils.cli.predict", "cmd_predict"))

    reproduce = sub.add_parser("reproduce", help="run the paper notebooks headless and tabulate results")
    reproduce.add_argument("--datasets", nargs="*", default=None, help="only these datasets (default all)")
    reproduce.add_argument("--results-dir", default=None)
    reproduce.set_defaults(func=_lazy("s2p_utils.cli.reproduce", "cmd_reproduce"))

    docs = sub.add_parser("docs", help="build the static site of the executed notebooks (Sphinx + myst-nb)")
    docs.add_argument("--results-dir", default=None, help="what `s2p reproduce` wrote (default results/)")
    docs.add_argument("--site-dir", default=None, help="the HTML site (default <results>/site)")
    docs.add_argument(
        "--source-dir", default=None, help="the generated Sphinx source (default build/docs-src)"
    )
    docs.set_defaults(func=_lazy("s2p_utils.cli.docs", "cmd_docs"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = _attach_negative_values(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "predict" and not hasattr(args, "model"):
        from s2p_utils.packaged_models import DEFAULT_MODEL, PREFIX, looks_like_model

        first = args.files[0]
        if looks_like_model(first) and len(args.files) > 1:
            args.model, args.files = first, args.files[1:]
        else:
            args.model = PREFIX + DEFAULT_MODEL
    try:
        return args.func(args)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"s2p: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
