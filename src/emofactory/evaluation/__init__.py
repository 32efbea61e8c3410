"""Measuring the factory's labels against known ones: `emofactory eval` (labelled sets, the in-process
pipeline, per-modality and fused metrics, plots)."""
