"""The Gradio app: one function per part of the page and per result tab, each building its
components and wiring its events (the `/upscale` and `/compare_all` API endpoints among
them); what the events do is `demo.handlers`.

`build_app(checkpoints_dir=None)` returns the Blocks; `launch(app)` starts it the safe way
(127.0.0.1, no share link, queue with concurrency 1, upload size limit, no analytics,
no extra served folders).
"""

from __future__ import annotations

import os
import types
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from hub_models import faces  # noqa: E402

from . import whole  # noqa: E402
from .catalogue import SCALES, ModelZoo  # noqa: E402
from .degradation import BLUR_CHOICES, DEGRADATIONS  # noqa: E402
from .framing import FRAMINGS  # noqa: E402
from .handlers import COMPARE_HEADERS, TABLE_HEADERS, Handlers, degradation_note  # noqa: E402
from .results import PROTOCOL_NOTE  # noqa: E402

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_SIZE = "50mb"
QUEUE_SIZE = 16

CSS = """
#title h1 {margin-bottom: 0.2em}
.result-img img {width: 100% !important; height: 100% !important; object-fit: contain}
#status {min-height: 2.5em}
#compare-gallery .caption-label {white-space: normal !important; max-width: calc(100% - 8px) !important;
  overflow: visible !important; text-overflow: clip !important; opacity: 0.92}
#compare-table td, #compare-table th {white-space: normal !important}
"""


def _pass_path(self, payload):
    """Preprocessing for the upload widget: hand over the uploaded file's path, undecoded.

    Gradio's own `Image.preprocess` opens the file with PIL (and may re-encode it); the
    app decodes every upload itself (`demo.imageio.load_image`) so that a broken or hostile
    file becomes a readable message.  Gradio has already checked that the path lies in its
    upload folder before this runs.  (Set on the instance: subclassing a component makes
    Gradio write a .pyi stub next to this file.)
    """
    if payload is None:
        return None
    if getattr(payload, "path", None):
        return str(payload.path)
    raise gr.Error("The image did not arrive (no file); please upload it again.")


def upload_image(**kwargs) -> gr.Image:
    """A `gr.Image` whose value reaches the handler as the raw uploaded file's path."""
    image = gr.Image(**kwargs)
    image.preprocess = types.MethodType(_pass_path, image)
    return image


# ---------------------------------------------------------------------------------------
# the page: header, inputs (left), results with one function per tab (right), about
# ---------------------------------------------------------------------------------------
PRIVATE = {"queue": False, "api_visibility": "private"}  # small UI updates: no queue, not in the API
SINGLE_MODEL_TABS = ("pair", "slider", "photo")  # the tabs /upscale fills (with the score table)


def _checkpoint_note(zoo: ModelZoo) -> str:
    if zoo.trained:
        return ""
    where = "`checkpoints/`"
    try:
        where = f"`{zoo.root.resolve().relative_to(Path.cwd().resolve())}/`"
    except ValueError:
        where = "the checkpoint folder (`FACESR_CHECKPOINTS`)"
    return (f"⚠️ **No trained checkpoints were found** in {where}, so only bicubic interpolation is available. "
            "Trained models appear here automatically once their folders (config.json + model.safetensors) "
            "are in place; restart the demo after adding them.")


def _header(zoo: ModelZoo) -> None:
    gr.Markdown(
        "# facesr-hub · face super-resolution\n"
        "Upload a photo or a face and choose a model. **Already low-resolution?** Keep the first mode and the whole "
        "image is enlarged ×2 to ×16. To *measure* a model, let the demo make the low-resolution input from your "
        "image and compare the result with the original: **higher PSNR/SSIM** and **lower LPIPS** are better. "
        "Everything runs on this machine.", elem_id="title")
    note = _checkpoint_note(zoo)
    if note:
        gr.Markdown(note, elem_id="checkpoint-note")


def _inputs(app: gr.Blocks, h: Handlers) -> types.SimpleNamespace:
    """The left column (upload, examples, model, low-resolution mode, scale, settings, buttons)
    and its own events: the model and the mode narrow the scale and explain themselves."""
    zoo, default_model = h.zoo, h.default_model
    default_scales = list(zoo.entry(default_model).scales)
    ins = types.SimpleNamespace()
    ins.degradation = gr.Radio([(v, k) for k, v in DEGRADATIONS.items()], value="none", label="Low-resolution input",
                               info="Is your image already low-resolution, or should the demo make it so?",
                               render=False)
    ins.image = upload_image(label="Face or photo", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard"], height=300, elem_id="input-image", elem_classes="result-img")
    examples_slot = gr.Column()
    ins.model = gr.Dropdown(zoo.choices(), value=default_model, label="Model",
                            info="The default is the best measured checkpoint (its card's PSNR-Y gain over bicubic).",
                            interactive=True, elem_id="model")
    ins.model_info = gr.Markdown(zoo.entry(default_model).describe())
    ins.degradation.render()
    ins.degradation_note = gr.Markdown(degradation_note(zoo, "none"), elem_id="degradation-note")
    # every scale is valid server-side (API calls); the page narrows the choices to the model's
    ins.scale = gr.Radio([(f"×{s}", s) for s in SCALES], value=4 if 4 in default_scales else default_scales[0],
                         label="Upscale by", info="Only the scales the chosen model was trained for are offered.",
                         elem_id="scale")
    with gr.Accordion("Real-world degradation settings", open=False, visible=False) as ins.rw_box:
        with gr.Row():
            ins.blur_kind = gr.Dropdown(list(BLUR_CHOICES), value="gaussian", label="Blur")
            ins.blur_size = gr.Slider(1, 15, value=3, step=2, label="Blur size (px, odd)")
        ins.noise = gr.Slider(0, 50, value=5, step=0.5, label="Noise σ (0–255 scale)")
        ins.jpeg_quality = gr.Slider(10, 100, value=75, step=1, label="JPEG quality")
        ins.seed = gr.Number(0, precision=0, minimum=0, label="Noise seed")
        gr.Markdown("blur → downscale by the scale above → Gaussian noise → JPEG (AGRNet eq. 28).")
    with gr.Accordion("Face framing", open=False):
        ins.framing = gr.Radio([(v, k) for k, v in FRAMINGS.items()], value="auto", label="Framing",
                               info="The models are trained on 128×128 face crops. When the demo makes the "
                                    "low-resolution input, the face in a larger photo is found with OpenCV's "
                                    "frontal-face Haar cascade and cropped square. When the image already is "
                                    "low-resolution, the whole image is upscaled; “Always look for a face” then "
                                    "upscales every face with the model and the rest with bicubic.")
        ins.paste_back = gr.Checkbox(True, label="Paste the result back into the photo",
                                     info="Shown in the “In the photo” tab when a face was cropped.")
    with gr.Row():
        ins.run_btn = gr.Button("Upscale", variant="primary", elem_id="run")
        ins.compare_btn = gr.Button("Compare all models", variant="secondary", elem_id="compare")
    with examples_slot:
        ins.examples = _examples(ins)
    ins.model.change(h.on_model, [ins.model, ins.scale], [ins.scale, ins.model_info], **PRIVATE)
    app.load(h.on_model, [ins.model, ins.scale], [ins.scale, ins.model_info], **PRIVATE)
    ins.degradation.change(h.on_degradation, [ins.degradation, ins.model],
                           [ins.rw_box, ins.scale, ins.degradation_note, ins.model], **PRIVATE)
    return ins


def _examples(ins: types.SimpleNamespace) -> gr.Examples:
    return gr.Examples(
        examples=[[str(EXAMPLES_DIR / "lowres_32px_201608.png"), "none"],
                  [str(EXAMPLES_DIR / "celeba_201606.jpg"), "bicubic"],
                  [str(EXAMPLES_DIR / "celeba_201631.jpg"), "real-world"],
                  [str(EXAMPLES_DIR / "celeba_201612.jpg"), "bicubic"],
                  [str(EXAMPLES_DIR / "photo_480x320_201625.jpg"), "bicubic"]],
        inputs=[ins.image, ins.degradation], label="Examples (CelebA test faces; click one to run it)",
        example_labels=["Tiny 32 px face ×4", "Face, bicubic", "Face, real-world", "Face with glasses",
                        "Photo (face is detected)"],
        examples_per_page=5)


def _result_image(label: str, height: int = 300, **kwargs) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, height=height, elem_classes="result-img",
                    buttons=["download", "fullscreen"], **kwargs)


def _on_select(tab: gr.Tab, tab_id: str, out: types.SimpleNamespace) -> None:
    """Remember the open tab; the single-model score table shows under the single-model tabs only."""
    tab.select(lambda: (tab_id, gr.Dataframe(visible=tab_id != "compare")), outputs=[out.tab_state, out.table],
               **PRIVATE)


def _pair_tab(out: types.SimpleNamespace) -> None:
    with gr.Tab("Side by side", id="pair") as tab:
        with gr.Row():
            out.lr_img = _result_image("Low-res input")
            out.sr_img = _result_image("Super-resolved", elem_id="result")
            out.hr_img = _result_image("Original")
    _on_select(tab, "pair", out)


def _slider_tab(out: types.SimpleNamespace) -> None:
    with gr.Tab("Slider", id="slider") as tab:
        out.slider = gr.ImageSlider(label="Low-res input ⟷ super-resolved (drag)", format="png", interactive=False,
                                    max_height=520)
    _on_select(tab, "slider", out)


def _photo_tab(out: types.SimpleNamespace) -> None:
    with gr.Tab("In the photo", id="photo") as tab:
        out.photo_img = _result_image("Result pasted into the photo", height=420)
    _on_select(tab, "photo", out)


def _compare_tab(h: Handlers, ins: types.SimpleNamespace, out: types.SimpleNamespace) -> None:
    """Every model on the same input; "Compare all models" opens it and fills it (/compare_all)."""
    with gr.Tab("Compare all", id="compare") as tab:
        gallery = gr.Gallery(label="Every model on the same input", format="png", columns=3, height="auto",
                             object_fit="contain", interactive=False, elem_id="compare-gallery")
        table = gr.Dataframe(headers=COMPARE_HEADERS, interactive=False, wrap=True, label="Scores and run time",
                             elem_id="compare-table", max_height=900,
                             column_widths=["23%", "10%", "11%", "11%", "11%", "9%", "25%"])
    _on_select(tab, "compare", out)
    inputs = [ins.image, ins.degradation, ins.scale, ins.framing, ins.blur_kind, ins.blur_size, ins.noise,
              ins.jpeg_quality, ins.seed]
    outputs = [gallery, table, out.status]
    ins.compare_btn.click(lambda: (gr.Tabs(selected="compare"), "compare", gr.Dataframe(visible=False)), None,
                          [out.tabs, out.tab_state, out.table], **PRIVATE).then(
        h.compare_all, inputs, outputs, api_name="compare_all", concurrency_id="sr").failure(
        h.on_compare_failure, None, outputs, **PRIVATE)


def _upscale_events(h: Handlers, ins: types.SimpleNamespace, out: types.SimpleNamespace) -> None:
    """Upscale (the /upscale endpoint) and a click on an example fill the single-model tabs,
    the score table, the details and the downloads, then show the last single-model tab."""
    inputs = [ins.image, ins.model, ins.degradation, ins.scale, ins.framing, ins.paste_back, ins.blur_kind,
              ins.blur_size, ins.noise, ins.jpeg_quality, ins.seed]
    outputs = [out.lr_img, out.sr_img, out.hr_img, out.slider, out.table, out.scores, out.photo_img, out.files,
               out.status]

    def show_result(current):
        tab_id = current if current in SINGLE_MODEL_TABS else "pair"
        return gr.Tabs(selected=tab_id), tab_id, gr.Dataframe(visible=True)

    for trigger, api in ((ins.run_btn.click, {"api_name": "upscale"}),
                         (ins.examples.load_input_event.then, {"api_visibility": "private"})):
        run = trigger(h.upscale, inputs, outputs, concurrency_id="sr", **api)
        run.success(show_result, out.tab_state, [out.tabs, out.tab_state, out.table], **PRIVATE)
        run.failure(h.on_upscale_failure, None, outputs, **PRIVATE)


def _results(h: Handlers, ins: types.SimpleNamespace) -> None:
    """The right column: status line, the four result tabs, scores, details, downloads."""
    out = types.SimpleNamespace(tab_state=gr.State("pair"))
    out.status = gr.Markdown("Pick an example or upload an image, then press **Upscale**.", elem_id="status",
                             label="Status")
    out.table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="score-table", render=False,
                             label="Scores: model vs bicubic on the same input (PSNR in dB; ↑ higher is better, "
                                   "↓ lower is better)", column_widths=["34%", "14%", "13%", "14%", "12%", "13%"])
    with gr.Tabs(selected="pair") as out.tabs:
        _pair_tab(out)
        _slider_tab(out)
        _photo_tab(out)
        _compare_tab(h, ins, out)
    out.table.render()
    out.files = gr.File(label="Download (PNG: result, low-res input, photo)", file_count="multiple", interactive=False)
    with gr.Accordion("Details (JSON)", open=False):
        out.scores = gr.JSON(label="Run details and scores")
    _upscale_events(h, ins, out)


def _about() -> None:
    with gr.Accordion("About the scores, the face detector and the examples", open=False):
        gr.Markdown(
            f"- **Scores**: {PROTOCOL_NOTE}. They compare the result with the original image, so they "
            "exist only when the low-resolution input was made from your image.\n"
            "- **Bicubic row**: plain bicubic upscaling of the very same low-resolution input, the baseline.\n"
            "- **Large images**: the whole-image mode estimates the time first and reduces the input only when the "
            f"run would take over {whole.MAX_SECONDS / 60:.0f} min; `python -m hub_models upscale IN [OUT] --model NAME "
            "--scale S` has no such limit.\n"
            f"- **Face detector**: {faces.CASCADE_NAME}, run by OpenCV from the file its wheel ships (nothing is downloaded).\n"
            "- **Examples**: CelebA test faces (FSRNet's 128×128 crops), for non-commercial research use only.\n"
            "- **Privacy**: uploads stay on this machine, in Gradio's temporary cache (cleared after at most 2 h).")


def build_app(checkpoints_dir: str | os.PathLike | None = None, zoo: ModelZoo | None = None) -> gr.Blocks:
    """The demo as a `gr.Blocks` (not launched). `checkpoints_dir` defaults to the
    repository's checkpoints/ (or $FACESR_CHECKPOINTS)."""
    h = Handlers(zoo or ModelZoo(checkpoints_dir))
    with gr.Blocks(title="facesr-hub · face super-resolution demo", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as app:
        _header(h.zoo)
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=340):
                ins = _inputs(app, h)
            with gr.Column(scale=6, min_width=420):
                _results(h, ins)
        _about()
    app.zoo = h.zoo  # for tests and tools
    return app


def launch(app: gr.Blocks, *, server_name: str | None = None, server_port: int | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False):
    """Start `app` with the demo's safety settings; host/port default to GRADIO_SERVER_NAME
    (127.0.0.1) and GRADIO_SERVER_PORT (7860)."""
    server_name = server_name or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    server_port = int(server_port or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return app.launch(
        server_name=server_name, server_port=server_port, share=False, inbrowser=False,
        prevent_thread_lock=prevent_thread_lock, quiet=quiet, show_error=False,
        max_file_size=MAX_FILE_SIZE, allowed_paths=[], ssr_mode=False, mcp_server=False, pwa=False,
        enable_monitoring=False, footer_links=["api"], theme=gr.themes.Soft(), css=CSS)
