"""The cost model against every published NNIE board time (../shared/docs/latency-facts.md).

Prints, per NNIE-only point, the measured time, the leave-one-out prediction (fitted without
that point) and its error; per '+ CPU' point the prediction of the full fit and its bound.

    python benchmarks/latency.py [--models ../shared/models]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from nnbuild.nnie.cost import fit, measurements, model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=str(ROOT.parent / "shared" / "models"))
    args = parser.parse_args()
    works = fit.reference_nets(args.models)
    etas = fit.fit(measurements.nnie_only(), works)
    print("| point | measured ms | LOO prediction ms | error |\n|---|---|---|---|")
    for row in fit.leave_one_out(works):
        print(f"| {row['point']} | {row['measured_ms']:.1f} | {row['predicted_ms']:.2f} | "
              f"{100 * row['error']:+.1f}% |")
    print("\n| '+ CPU' point | bound ms | prediction ms (full fit) | below |\n|---|---|---|---|")
    for bound in measurements.upper_bounds():
        ms = fit.predict(bound, works, etas[model.CHIPS[bound.chip].generation])
        print(f"| {bound.label} | {bound.ms:.0f} | {ms:.1f} | {ms <= bound.ms * (1 + 1e-6)} |")
    print("\nfitted efficiency per NNIE generation: "
          + ", ".join(f"{g}: {e:.4f}" for g, e in etas.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
