"""`python -m hub_models`: the table of registered architectures (the README's model list).

    python -m hub_models                                   # the table
    python -m hub_models export NAME --format onnx [--out FILE] [--scale S] [--opset N]
    python -m hub_models upscale IN [OUT] --model NAME --scale S [--faces]   # a photo or a folder

`export` writes an architecture (untrained default config) or a checkpoint (a name of
`hub_models.list_checkpoints()`, or a folder) as ONNX: the network at one scale, dynamic
batch/height/width (see `hub_models.onnx_export`)."""

from __future__ import annotations

import argparse
import sys

import hub_models
from hub_models.tables import Column, table


def _model_row(name: str, cls) -> dict:
    model = cls()
    paper = cls.paper.get("title", "") + (f" (`{cls.paper['seed']}`)" if cls.paper.get("seed") else "")
    configs = cls.capabilities.other_scale_configs(model.supported_scales)
    others = "; ".join(", ".join(f"`{k}={v}`" for k, v in config.items()) for config in configs)
    return {"name": f"`{name}`", "class": f"`{cls.__name__}`", "paper": paper,
            "input": "bicubic-upsampled LR" if cls.capabilities.pre_upsampled else "LR",
            "scales": ", ".join(f"x{s}" for s in model.supported_scales), "others": others or "-",
            "params": f"{hub_models.parameter_count(model) / 1e6:.3f} M"}


MODEL_TABLE = [Column("name", "name"), Column("class", "class"), Column("paper", "paper"), Column("input", "input"),
               Column("scales", "scales (default config)"), Column("others", "other scales (config)"),
               Column("params", "parameters (default config)")]


def model_table() -> str:
    """The registry as a markdown table (README "Models"; `python -m hub_models`)."""
    in_paper_order = sorted(hub_models.MODELS.items(), key=lambda item: (item[1].paper.get("seed") or "~", item[0]))
    return table(MODEL_TABLE, [_model_row(name, cls) for name, cls in in_paper_order])  # seeds 000-004, then baselines


def _export(args) -> int:
    from hub_models.onnx_export import OPSET, export_onnx

    if args.name in hub_models.MODELS:
        model, source = hub_models.MODELS[args.name](), "untrained default config"
    else:
        model, source = hub_models.load(args.name), "weights " + args.name
    scale, caps = model._resolve_scale(args.scale), model.capabilities
    out = args.out or f"{args.name.rstrip('/').split('/')[-1]}-x{scale}.onnx"
    path = export_onnx(model.eval(), out, scale=scale, opset=args.opset or OPSET)
    print(f"wrote {path}: {model.architecture} x{scale} ({source}), ONNX opset {args.opset or OPSET}, "
          "input x: float32 (N,3,H,W) dynamic" + (" (bicubic-upsampled LR)" if caps.pre_upsampled else " (LR)")
          + (f", H and W multiples of {caps.input_multiple}" if caps.input_multiple > 1 else ""))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hub_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    ex = sub.add_parser("export", help="write a model as ONNX (dynamic batch, height, width)")
    ex.add_argument("name", help="architecture (untrained default config), checkpoint name or folder")
    ex.add_argument("--format", choices=["onnx"], default="onnx")
    ex.add_argument("--out", help="output file (default NAME-xSCALE.onnx)")
    ex.add_argument("--scale", type=int, help="scale of multi-scale models (default: the model's default)")
    ex.add_argument("--opset", type=int, help="ONNX opset (default: hub_models.onnx_export.OPSET)")
    ex.set_defaults(func=_export)
    from hub_models.upscale_cli import add_parser as add_upscale_parser

    add_upscale_parser(sub)
    args = p.parse_args(argv)
    if args.command is None:
        print(model_table())
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
