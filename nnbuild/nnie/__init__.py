"""NNIE back end: quantizer, calibration, quantized simulation, mapper cfg/runner and cost model."""
