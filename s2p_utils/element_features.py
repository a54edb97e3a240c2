"""Per-atom physical element descriptors, appended to the PDF rows by the ``*_plus`` presets.

The paper's model sees an element only through its learned embedding, which is poorly trained for
elements that occur in a handful of crystals. Phonon frequencies scale with ``1/sqrt(mass)`` and bond
lengths with covalent radii, so a few smooth descriptors let the network interpolate across the
periodic table. Columns (all dimensionless and of order one):

====  =========================================  =================
col   descriptor                                 scaling
====  =========================================  =================
0     ln(atomic mass / u)                        / 5
1     1 / sqrt(atomic mass / u)                  × 3
2     covalent radius (Å)                        / 2
3     period (row of the periodic table)         / 7
4     position in the period (Z − Z of the       / 32
      preceding noble gas)
====  =========================================  =================
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_masses, covalent_radii

__all__ = ["ELEMENT_DESCRIPTORS", "N_ELEMENT_DESCRIPTORS", "element_descriptors", "element_period"]

ELEMENT_DESCRIPTORS = ("log_mass", "inv_sqrt_mass", "covalent_radius", "period", "period_position")
N_ELEMENT_DESCRIPTORS = len(ELEMENT_DESCRIPTORS)
_NOBLE_GAS_Z = np.array([0, 2, 10, 18, 36, 54, 86, 118])


def element_period(numbers: np.ndarray) -> np.ndarray:
    """Period (row of the periodic table, 1…7) of atomic numbers ``numbers`` ``(n_atoms,)``: int ``(n_atoms,)``.

    Raises ``ValueError`` for atomic numbers outside 1…118.
    """
    z = np.asarray(numbers, dtype=np.int64)
    if z.size and (z.min() < 1 or z.max() > 118):
        raise ValueError(f"atomic numbers must lie in 1..118, got {z.min()}..{z.max()}")
    return np.searchsorted(_NOBLE_GAS_Z, z, side="left")  # Z=1,2 → 1; 3..10 → 2; ...


def element_descriptors(numbers: np.ndarray) -> np.ndarray:
    """Descriptors of atomic numbers ``numbers`` ``(n_atoms,)`` → float32 ``(n_atoms, 5)``.

    Raises ``ValueError`` for atomic numbers outside 1…118.
    """
    period = element_period(numbers)
    z = np.asarray(numbers, dtype=np.int64)
    mass = atomic_masses[z]
    position = z - _NOBLE_GAS_Z[period - 1]
    columns = [
        np.log(mass) / 5.0,
        3.0 / np.sqrt(mass),
        covalent_radii[z] / 2.0,
        period / 7.0,
        position / 32.0,
    ]
    return np.stack(columns, axis=1).astype(np.float32)
