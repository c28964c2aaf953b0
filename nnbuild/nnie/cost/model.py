"""The latency model: each NNIE operation is bound by its compute or by its DRAM traffic.

For one operation (``nnbuild.nnie.cost.work``) at ``b`` bits (8 or 16) on one NNIE core:

    ms = max(work_macs * s / (peak_macs * eta[gen]),  bytes * s / dram_bytes_per_s)   * 1e3
    s  = b / 8   (16-bit halves the MAC rate and doubles every byte moved)

and a network's latency is the sum over its operations (NNIE runs them one after another).

* ``work_macs`` counts grouped (depthwise) convolutions as NNIE runs them: each group is one
  dense operation over all the layer's input channels (``macs * group``). Of the hypotheses in
  ../shared/docs/latency-facts.md this is the one the board data support: with it RetinaFace-640
  (17 ms) and MobileFaceNet (~10 ms) on Hi3516DV300 run at the same rate (186 vs 190 GMAC/s);
  costing depthwise by its real MACs gives rates 2.6x apart (58 vs 22 GMAC/s), and padding each
  group to 16 input channels 2.3x apart (86 vs 37). A fixed cost per group operation (the other
  reading of "one operation per group") fits those two points only with a dense rate of 64
  GMAC/s, which puts the SDK's YOLOv3-416 at ~510 ms on Hi3516DV300, above its measured 238 ms
  *including* CPU post-processing: rejected.
* ``peak_macs`` is the datasheet TOPS / 2 per core; ``dram_bytes_per_s`` the DRAM interface
  peak (bus width x transfer rate). Using the peak makes the memory term a lower bound, so it
  only matters for layers that would exceed the DRAM even at its best (the first convolution of
  a 640x640 net, element-wise layers).
* ``eta`` (the fraction of peak MAC rate the mapper's code reaches) is the one fitted parameter,
  one per NNIE generation: 1.2 (Hi3516CV500/DV300/AV300, Hi3519AV100) and 1.1 (Hi3559AV100),
  fitted to the NNIE-only board times (``nnbuild.nnie.cost.fit``). Chips without a measurement
  take their generation's eta, so their estimates follow the datasheet ratios (Hi3516CV500: half
  the DV300's TOPS and DRAM width, ~2x slower).
* 16-bit = 2x is structural, not fitted (two passes of the 8-bit MAC array, two bytes per
  value); the board agrees: 34 ms vs 17 ms for RetinaFace-640, "~40 vs 20-odd" with the CPU.
* A per-operation overhead is not part of the model: fitted with eta on the Hi3516DV300 points
  (per group operation or per layer) it comes out at zero; one shared by all chips and fitted on
  all points raises MobileFaceNet-on-DV300's leave-one-out error from 4% to 38%.
* NNIE 1.1 fits worse: on Hi3559AV100 MobileFaceNet (14 ms) runs 1.5x slower relative to the
  dense YOLOv5s (17 ms) than this model says; the '+ CPU' SSD300 time bounds its eta from below.
* **Hi3559AV100 has two NNIE cores** (4 TOPS together per its third-party README, 2 per core).
  One forward pass runs on one core (the SDK's forward task is bound to one ``SVP_NNIE_ID``), so
  the estimate is for one core; two streams on two cores double the throughput, not the speed.
  Its DRAM is not in the public briefs: the model assumes Hi3519AV100's 10.7 GB/s.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from nnbuild.nnie.cost.work import LayerWork


@dataclasses.dataclass(frozen=True)
class ChipCost:
    """What the latency model needs of one chip.

    Attributes:
        name: recipe chip name.
        generation: NNIE version (``"1.2"`` or ``"1.1"``), selects the fitted efficiency.
        tops: datasheet int8 TOPS of one NNIE core.
        cores: NNIE cores (a forward pass uses one).
        dram_gbps: DRAM interface peak in GB/s.
        source: where the figures come from.
    """

    name: str
    generation: str
    tops: float
    cores: int
    dram_gbps: float
    source: str

    @property
    def peak_macs(self) -> float:
        """MACs per second of one core at 8 bits (1 MAC = 2 ops)."""
        return self.tops * 1e12 / 2


BRIEFS = "HiSilicon briefs (latency-facts.md, chips table)"
CHIPS: dict[str, ChipCost] = {c.name: c for c in (
    ChipCost("hi3516cv500", "1.2", 0.5, 1, 3.6, BRIEFS + ": 16-bit DDR at 1800 Mbit/s"),
    ChipCost("hi3516dv300", "1.2", 1.0, 1, 7.2, BRIEFS + ": 32-bit DDR at 1800 Mbit/s"),
    ChipCost("hi3516av300", "1.2", 1.0, 1, 8.5, BRIEFS + ": 32-bit DDR at 2133 Mbit/s"),
    ChipCost("hi3519av100", "1.2", 2.0, 1, 10.7, BRIEFS + ": 32-bit DDR4 at 1333 MHz"),
    ChipCost("hi3559av100", "1.1", 2.0, 2, 10.7,
             "mahxn0/Hisi3559A_Yolov5 README: 4 TOPS over 2 cores; DRAM not published, "
             "assumed equal to Hi3519AV100"),
)}

# Fitted by nnbuild.nnie.cost.fit on every NNIE-only point of nnbuild.nnie.cost.measurements;
# tests/nnie/test_cost_fit.py refits and fails if these drift.
EFFICIENCY = {"1.2": 0.395266, "1.1": 0.186205}
# Largest leave-one-out error (fraction) of the points of each generation, same test.
LOO_ERROR = {"1.2": 0.035, "1.1": 0.356}


def layer_ms(work: LayerWork, bits: int, chip: ChipCost, eta: float) -> tuple[float, str]:
    """(milliseconds, ``"compute"`` | ``"memory"`` | ``"none"``) of one layer's operation."""
    if bits not in (8, 16):
        raise ValueError(f"cost model: bits must be 8 or 16, got {bits!r}")
    if work.kind in ("fused", "free"):
        return 0.0, "none"
    scale = bits / 8
    compute = work.work_macs * scale / (chip.peak_macs * eta)
    memory = (work.act_elems + work.weight_elems) * scale / (chip.dram_gbps * 1e9)
    return (max(compute, memory) * 1e3, "compute" if compute >= memory else "memory")


def network_ms(rows: Sequence[LayerWork], bits: Mapping[str, int] | int, chip: ChipCost,
               eta: float | None = None) -> float:
    """Total milliseconds of ``rows``; ``bits`` one width or layer name -> width (default 8)."""
    eta = EFFICIENCY[chip.generation] if eta is None else eta
    total = 0.0
    for row in rows:
        width = bits if isinstance(bits, int) else bits.get(row.name, 8)
        total += layer_ms(row, width, chip, eta)[0]
    return total
