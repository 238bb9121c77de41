"""The facesr-hub Gradio demo: `python app.py` (or `python -m demo`) starts it.

    import demo
    app = demo.build_app(checkpoints_dir="checkpoints")   # gr.Blocks, not launched
    demo.launch(app)                                       # 127.0.0.1:7860 by default

Modules, lowest first (the demo imports `hub_models` only, never `train` or `bench`):
`catalogue` (which models exist, their display names and measured scores, loading),
`imageio` (safe decoding of uploads), `degradation` (the low-resolution modes),
`framing` (face or whole image; faces are `hub_models.faces`), `results` (what a run
returns, scoring), `whole` (mode "none": the whole photo, tiled), `pipeline` (running a
model, comparing all), `handlers` (what the buttons do), `ui` (the page, one function per
tab), `screenshot` (a headless-Chromium picture of the page).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_app(checkpoints_dir=None, zoo=None):
    """The demo's gr.Blocks (see demo.ui.build_app)."""
    from .ui import build_app as _build

    return _build(checkpoints_dir=checkpoints_dir, zoo=zoo)


def launch(app, **kwargs):
    """Start the app with the demo's safety settings (see demo.ui.launch)."""
    from .ui import launch as _launch

    return _launch(app, **kwargs)


def main(argv=None) -> None:
    """Command line: python app.py [--checkpoints DIR] [--host H] [--port P]."""
    import argparse
    import logging
    import threading

    p = argparse.ArgumentParser(description="facesr-hub face super-resolution demo (Gradio)")
    p.add_argument("--checkpoints", default=None, help="folder of model folders (default: checkpoints/ or $FACESR_CHECKPOINTS)")
    p.add_argument("--host", default=None, help="address to bind (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = build_app(checkpoints_dir=args.checkpoints)

    def warm_up():  # load LPIPS and the default model while the page opens
        try:
            from hub_models import metrics

            metrics.get_lpips_net("cpu")
            app.zoo.get(app.zoo.default_model(), app.zoo.entry(app.zoo.default_model()).scales[0])
        except Exception:  # the first request will report any real problem
            pass

    threading.Thread(target=warm_up, daemon=True).start()
    launch(app, server_name=args.host, server_port=args.port)


__all__ = ["build_app", "launch", "main"]
