"""`python -m hub_models`: the table of registered architectures (the README's model list)."""

from __future__ import annotations

import hub_models


def model_table() -> str:
    lines = ["| name | class | paper | input | scales (default config) | other scales (config) | parameters (default config) |",
             "|---|---|---|---|---|---|---|"]
    for name, cls in sorted(hub_models.MODELS.items()):
        model = cls()
        params = sum(p.numel() for p in model.parameters())
        paper = cls.paper.get("title", "")
        if cls.paper.get("seed"):
            paper += f" (`{cls.paper['seed']}`)"
        kind = "bicubic-upsampled LR" if cls.pre_upsampled else "LR"
        scales = ", ".join(f"x{s}" for s in model.supported_scales)
        others = "; ".join(", ".join(f"`{k}={v}`" for k, v in config.items()) for config in cls.other_scale_configs)
        lines.append(f"| `{name}` | `{cls.__name__}` | {paper} | {kind} | {scales} | {others or '-'} | {params / 1e6:.3f} M |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(model_table())
