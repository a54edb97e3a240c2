"""Fuzzing ``s2p predict`` (issue 12): a few hundred randomly perturbed and truncated structure files (CIF,
POSCAR, extxyz, pymatgen JSON) in one batch. Every file must end up as exactly one CSV row or exactly one
``skipped FILE: reason`` line; unmodified files always get a row; no traceback; exit 1 iff a file failed."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

pytest.importorskip("keras")

from test_predict import METADATA, _tiny_model  # noqa: E402
from test_structures import pymatgen_dict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_FILES = 300
BASES = {
    "nacl": bulk("NaCl", "rocksalt", a=5.64),
    "si": bulk("Si", "diamond", a=5.43),
    "cu": bulk("Cu", "fcc", a=3.61),
    "zno": bulk("ZnO", "wurtzite", a=3.25, c=5.2),
}
FORMATS = {"cif": "cif", "vasp": "vasp", "xyz": "extxyz"}  # suffix → ASE format; "json": pymatgen dict
NUMBER = re.compile(r"-?\d+\.?\d*(?:[eE][-+]?\d+)?")
ODD_NUMBERS = ["nan", "inf", "-1e308", "1e300", "0", "-0.0", "999", "-7", "1e6", "abc", ""]


def _text(atoms, suffix: str) -> str:
    if suffix == "json":
        return json.dumps(pymatgen_dict(atoms))
    if suffix == "cif":  # ASE's CIF writer needs a binary stream, the others a text one
        binary = io.BytesIO()
        write(binary, atoms, format="cif")
        return binary.getvalue().decode("utf-8")
    buffer = io.StringIO()
    write(buffer, atoms, format=FORMATS[suffix])
    return buffer.getvalue()


def _perturb(text: str, rng: np.random.Generator) -> str:
    """One random damage: truncation, a lost/duplicated/swapped line, an odd number, junk bytes, a scaled value."""
    lines = text.splitlines(keepends=True)
    kind = int(rng.integers(7))
    if kind == 0:
        return text[: int(rng.integers(len(text)))]
    if kind == 1 and len(lines) > 1:
        del lines[int(rng.integers(len(lines)))]
    elif kind == 2:
        k = int(rng.integers(len(lines)))
        lines.insert(k, lines[k])
    elif kind == 3 and len(lines) > 1:
        a, b = rng.choice(len(lines), 2, replace=False)
        lines[a], lines[b] = lines[b], lines[a]
    elif kind in (4, 5):
        matches = list(NUMBER.finditer(text))
        if matches:
            m = matches[int(rng.integers(len(matches)))]
            value = ODD_NUMBERS[int(rng.integers(len(ODD_NUMBERS)))]
            if kind == 5:
                value = repr(float(m.group()) * 10 ** float(rng.uniform(-6, 6)))
            return text[: m.start()] + value + text[m.end() :]
    else:
        k = int(rng.integers(len(text) + 1))
        junk = "".join(chr(int(c)) for c in rng.integers(1, 0x2FF, int(rng.integers(1, 20))))
        return text[:k] + junk + text[k:]
    return "".join(lines)


def _write_files(folder: Path, rng: np.random.Generator) -> tuple[list[Path], set[Path]]:
    """``N_FILES`` files, every fifth one unmodified (the controls)."""
    files, controls = [], set()
    suffixes = [*FORMATS, "json"]
    for i in range(N_FILES):
        name = list(BASES)[i % len(BASES)]
        suffix = suffixes[(i // len(BASES)) % len(suffixes)]
        text = _text(BASES[name], suffix)
        path = folder / f"f{i:03d}_{name}.{suffix}"
        if i % 5 == 0:
            controls.add(path)
        else:
            text = _perturb(text, rng)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        files.append(path)
    return files, controls


def test_fuzzed_structure_files_in_one_batch(tmp_path):
    from s2p_utils.model import save_model

    model = save_model(_tiny_model(1), tmp_path / "tiny.keras", METADATA)
    folder = tmp_path / "inputs"
    folder.mkdir()
    files, controls = _write_files(folder, np.random.default_rng(12))
    out = tmp_path / "predictions.csv"
    env = {**os.environ, "S2P_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "s2p_utils.cli", "predict", str(model), *map(str, files)]
    child = subprocess.run(
        [*command, "--out", str(out), "--truncate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    stderr = child.stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    skipped = re.findall(r"^s2p predict: skipped (.+?): (.+)$", stderr, flags=re.MULTILINE)
    skipped_files = [Path(name) for name, _ in skipped]
    assert len(skipped_files) == len(set(skipped_files)), "a file reported twice"
    assert all(reason.strip() for _, reason in skipped), "a skip without a reason"
    with out.open() as stream:
        predicted = [Path(row["file"]) for row in csv.DictReader(stream)]
    assert len(predicted) == len(set(predicted))
    assert set(predicted).isdisjoint(skipped_files)
    assert set(predicted) | set(skipped_files) == set(files), "a file neither predicted nor reported"
    assert controls <= set(predicted)
    assert child.returncode == (1 if skipped_files else 0), stderr[-2000:]
    assert 0 < len(skipped_files) < len(files) - len(controls)  # the fuzzing did break some files, not all
