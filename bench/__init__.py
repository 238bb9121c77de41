"""Measuring code of the speed benchmark, split by concern (issue 16's layout; the results
stay in this folder for now):

- `bench.peaks`: the machine's dense-conv peaks per precision and each model's limit,
- `bench.backends`: onnxruntime / OpenVINO against PyTorch's default mode,
- `bench.tiled`: the 1024x1024 -> 4096x4096 tiled job,
- `bench.gpu`: bf16/fp16 (+ torch.compile) on a GPU when there is one,
- `bench.modes`: the per-CPU-class modes table.

`python -m bench --part speed` is `python -m bench --part speed` (the driver still
lives in bench/benchmark.py)."""
