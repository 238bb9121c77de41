"""The measuring package (`python -m bench`), split by concern; results under bench/results/.

- `bench.cli` (`python -m bench --part speed|quality`): the driver; `bench.environment`: the
  run's environment.json and benchmark.md (a part-only run merges into the other part's),
- `bench.timing`: time_once / measure / interleaved rounds, `MemoryProbe` (peak memory of a call),
- `bench.profiling`: FLOP counts (meta tensors), the conv recorder, one profiled call by op category,
- `bench.speed`: one model's speed subject (modes, drift check, default mode, batch 16, scaling);
  `bench.bounds`: what bounds it; `bench.speed_report`: its tables; `bench.speed_part`: the part,
- `bench.peaks` (dense-conv peaks, each model's limit), `bench.backends` (onnxruntime / OpenVINO),
  `bench.tiled` (the 4096x4096 tiled job), `bench.gpu` (bf16/fp16 on a GPU), `bench.sections`
  (those four after the speed tables), `bench.modes` (the modes file and its per-CPU-class table),
- `bench.datasets`: the test sets; `bench.quality`: the quality part (`hub_models.evaluation`);
  `bench.papers`: the papers' figures beside ours; `bench.quality_report`: quality.md,
- `bench.report`: tables as `Column` specs, shared cell formatters, csv writing,
- `bench.train_speed`, `bench.experiment`, `bench.tiling_memory`, `bench.tiling_tiles`: the
  other measurements; `bench.readme_tables`: README/docs tables from bench/results/.
"""
