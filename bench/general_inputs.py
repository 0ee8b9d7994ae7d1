"""Issue 7's acceptance benchmark: beyond the polynomial-time case [BJW] (docs/algorithms.md 1.5, 3).

Parts (``--part``), each printing a table and writing
``bench/results/general_<part>[_quick].json``:

- ``inputs`` (acceptance 1): ``method="general"`` on inputs uniform on a cube,
  Student-t with 3 degrees of freedom, sparse non-negative (n = 10 d k, d = 50) and
  the rows of scikit-learn's digits (d = 64, 1,797 rows); (k, m) = (8, 10).
- ``budget`` (acceptance 4): budgets too small to finish give ``.exact`` False,
  the units found and the reason, and never a wrong unit marked certified.
- ``m1`` (acceptance 2): ``method="few-outputs"``, m = 1, Gaussian inputs, d = 20,
  k in {2, 3, 4}: exact count and time per k.
- ``safran-shamir`` (acceptance 3): orthonormal V, m = 1, U all ones, d = 20,
  k = 2..10; beside it, how often Adam (same width, 5 restarts) reaches aligned
  error 1e-6.

The parts live in ``_general_parts.py`` (inputs, budget) and
``_few_outputs_parts.py`` (m1, safran-shamir); this file only dispatches.

Usage::

    python bench/general_inputs.py --part inputs --seeds 20
    python bench/general_inputs.py --quick --part all
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _few_outputs_parts  # noqa: E402
import _general_parts  # noqa: E402

PARTS = {**_general_parts.PARTS, **_few_outputs_parts.PARTS}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=["all", *PARTS])
    ap.add_argument("--quick", action="store_true", help="small sizes, few seeds")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per setting")
    args = ap.parse_args(argv)
    for name, run in PARTS.items():
        if args.part in ("all", name):
            run(quick=args.quick, seeds=args.seeds)


if __name__ == "__main__":
    main()
