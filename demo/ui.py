"""The Gradio app: layout, event handlers, the `/upscale` and `/compare_all` API endpoints.

`build_app(checkpoints_dir=None)` returns the Blocks; `launch(app)` starts it the safe way
(127.0.0.1, no share link, queue with concurrency 1, upload size limit, no analytics,
no extra served folders).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
import types
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from . import faces, imageio, pipeline  # noqa: E402
from .pipeline import DEGRADATIONS, FRAMINGS, SCALES, Degradation, DemoError, ModelZoo  # noqa: E402

log = logging.getLogger("facesr.demo")

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_FILE_SIZE = "20mb"
QUEUE_SIZE = 16
TABLE_HEADERS = ["Method", "PSNR-Y ↑", "SSIM-Y ↑", "PSNR-RGB ↑", "LPIPS ↓", "Time (ms)"]
COMPARE_HEADERS = ["Model", "PSNR-Y ↑", "SSIM-Y ↑", "PSNR-RGB ↑", "LPIPS ↓", "Time (ms)", "Note"]

CSS = """
#title h1 {margin-bottom: 0.2em}
.result-img img {width: 100% !important; height: 100% !important; object-fit: contain}
#status {min-height: 2.5em}
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
# helpers
# ---------------------------------------------------------------------------------------
class _Outbox:
    """A folder under the system temp dir for the PNGs offered for download; folders
    older than an hour are removed on each request (Gradio copies them to its cache)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="facesr-demo-"))

    def new(self) -> Path:
        now = time.time()
        for d in self.root.iterdir():
            try:
                if now - d.stat().st_mtime > 3600:
                    shutil.rmtree(d, ignore_errors=True)
            except OSError:
                pass
        d = self.root / uuid.uuid4().hex[:12]
        d.mkdir()
        return d


def _stem(path: str | None) -> str:
    stem = Path(path).stem if path else "image"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")[:40]
    return stem or "image"


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "–"
    if v == float("inf"):
        return "∞"
    return f"{v:.{digits}f}"


def _score_row(label: str, sc: dict | None, ms: float | None) -> list[str]:
    sc = sc or {}
    return [label, _fmt(sc.get("psnr_y"), 2), _fmt(sc.get("ssim_y"), 4), _fmt(sc.get("psnr_rgb"), 2),
            _fmt(sc.get("lpips"), 4), _fmt(ms, 0)]


def _short_label(entry: pipeline.ModelEntry) -> str:
    if entry.untrained:
        return f"{entry.display} (untrained)"
    return entry.display if entry.folder is None else f"{entry.display} ({entry.name})"


def _make_degradation(degradation, scale, blur_kind, blur_size, noise, jpeg_quality, seed) -> Degradation:
    try:
        return Degradation(
            mode=str(degradation or "bicubic"), scale=int(scale if scale is not None else 4),
            blur_kind=str(blur_kind or "gaussian"), blur_size=int(blur_size if blur_size is not None else 3),
            noise=float(noise if noise is not None else 0), jpeg_quality=int(jpeg_quality or 75),
            seed=int(seed or 0))
    except (TypeError, ValueError) as err:
        if isinstance(err, DemoError):
            raise
        raise DemoError(f"Invalid setting: {err}") from None


def _user_error(err: BaseException) -> gr.Error:
    if isinstance(err, (DemoError, imageio.ImageInputError)):
        return gr.Error(str(err), title="Cannot process this image", print_exception=False)
    log.exception("unexpected error in the demo")
    return gr.Error(
        f"Something went wrong while processing this image ({type(err).__name__}). The demo is still running: "
        "try another image or setting.", title="Error")


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


# ---------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------
def build_app(checkpoints_dir: str | os.PathLike | None = None, zoo: ModelZoo | None = None) -> gr.Blocks:
    """The demo as a `gr.Blocks` (not launched). `checkpoints_dir` defaults to the
    repository's checkpoints/ (or $FACESR_CHECKPOINTS)."""
    zoo = zoo or ModelZoo(checkpoints_dir)
    outbox = _Outbox()
    default_model = zoo.default_model()
    default_scales = list(zoo.entry(default_model).scales)
    default_scale = 4 if 4 in default_scales else default_scales[0]

    def scale_choices(name: str) -> list[tuple[str, int]]:
        return [(f"×{s}", s) for s in zoo.entry(name).scales if s in SCALES]

    # -- handlers -----------------------------------------------------------------------
    def upscale(image, model, degradation, scale, framing, paste_back, blur_kind, blur_size, noise,
                jpeg_quality, seed):
        """Super-resolve a face. Returns the low-resolution input (enlarged, nearest), the
        result, the original (None without ground truth), a before/after pair, a score table,
        a dict of the run (scores per method: psnr_y, ssim_y, psnr_rgb, lpips, time_ms), the
        result pasted into the photo (or None), PNG files to download and a status line."""
        try:
            return _upscale(image, model, degradation, scale, framing, paste_back, blur_kind, blur_size,
                            noise, jpeg_quality, seed)
        except gr.Error:
            raise
        except Exception as err:  # every failure becomes a readable message; the server goes on
            raise _user_error(err) from None

    def _upscale(image, model, degradation, scale, framing, paste_back, blur_kind, blur_size, noise,
                 jpeg_quality, seed):
        deg = _make_degradation(degradation, scale, blur_kind, blur_size, noise, jpeg_quality, seed)
        loaded = imageio.load_image(image)
        res = pipeline.run_upscale(zoo, loaded.rgb, str(model or default_model), deg,
                                   framing=str(framing or "auto"), paste=bool(paste_back))
        notes = loaded.notes + res.notes
        for n in notes:
            if n.startswith(("No face", "The image was reduced", "The input was reduced", "The photo was scaled")):
                gr.Warning(n)
        out_dir = outbox.new()
        stem, s = _stem(image), deg.scale
        files = [str(imageio.save_png(res.sr, out_dir / f"{stem}_{res.model.name}_x{s}.png")),
                 str(imageio.save_png(res.lr, out_dir / f"{stem}_lowres_{deg.mode}_x{s}.png"))]
        if res.photo_result is not None:
            files.append(str(imageio.save_png(res.photo_result, out_dir / f"{stem}_{res.model.name}_x{s}_photo.png")))
        rows = [_score_row(_short_label(res.model), res.scores.get(res.model.name), res.times_ms.get(res.model.name))]
        if res.model.name != "bicubic":
            rows.append(_score_row("Bicubic (same input)", res.scores.get("bicubic"), res.times_ms.get("bicubic")))
        table = {"headers": TABLE_HEADERS, "data": rows}
        lr_h, lr_w = res.lr.shape[:2]
        status = (f"**{res.model.display}** on {deg.describe()}: {lr_w}×{lr_h} → {res.sr.shape[1]}×{res.sr.shape[0]} px "
                  f"in {res.times_ms[res.model.name]:.0f} ms.")
        if res.scores:
            sc = res.scores[res.model.name]
            status += f" PSNR-Y {_fmt(sc['psnr_y'], 2)} dB, SSIM {_fmt(sc['ssim_y'], 3)}, LPIPS {_fmt(sc['lpips'], 3)}."
        if notes:
            status += "\n\n" + "\n".join(f"- {n}" for n in notes)
        return (res.lr_display, res.sr, res.hr, (res.lr_display, res.sr), table, res.summary(),
                res.photo_result, files, status)

    def compare_all(image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality, seed,
                    progress=gr.Progress()):
        """Run every model that works at the chosen scale on the same low-resolution input.
        Returns a gallery (input, each model, original), a table with each model's scores and
        run time, and a status line."""
        try:
            return _compare_all(image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality,
                                seed, progress)
        except gr.Error:
            raise
        except Exception as err:
            raise _user_error(err) from None

    def _compare_all(image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality, seed, progress):
        deg = _make_degradation(degradation, scale, blur_kind, blur_size, noise, jpeg_quality, seed)
        loaded = imageio.load_image(image)
        progress(0, desc="Preparing the input")

        def tick(i, n, label):
            progress((i, max(n, 1)), desc=f"Running {label}" if label != "done" else "Done", unit="models")

        prep, rows = pipeline.run_compare(zoo, loaded.rgb, deg, framing=str(framing or "auto"), progress=tick)
        lr8 = imageio.to_uint8(prep.lr)
        out_size = (lr8.shape[1] * deg.scale, lr8.shape[0] * deg.scale)
        gallery = [(imageio.nearest_upscale(lr8, out_size), f"Low-res input ({lr8.shape[1]}×{lr8.shape[0]}, {deg.describe()})")]
        table = []
        for r in rows:
            if r.sr is None:
                table.append([_short_label(zoo.entries[r.name]), "–", "–", "–", "–", "–", f"skipped: {r.skipped}"])
                continue
            cap = _short_label(zoo.entries[r.name])
            if r.scores:
                cap += (f" · {_fmt(r.scores['psnr_y'], 2)} dB · SSIM {_fmt(r.scores['ssim_y'], 3)}"
                        f" · LPIPS {_fmt(r.scores['lpips'], 3)}")
            cap += f" · {r.time_ms:.0f} ms"
            gallery.append((r.sr, cap))
            table.append(_score_row(_short_label(zoo.entries[r.name]), r.scores, r.time_ms) + [""])
        if prep.hr is not None:
            gallery.append((imageio.to_uint8(prep.hr), "Original (ground truth)"))
        ran = sum(r.sr is not None for r in rows)
        status = f"Compared {ran} model(s) on {deg.describe()}."
        skipped = [r for r in rows if r.sr is None]
        if skipped:
            status += f" {len(skipped)} skipped (see the table)."
        if not pipeline.scorable(prep.hr):
            status += " No scores: " + ("no ground truth in this mode." if prep.hr is None else "image too small.")
        notes = loaded.notes + prep.framed.notes
        if notes:
            status += "\n\n" + "\n".join(f"- {n}" for n in notes)
        return gallery, {"headers": COMPARE_HEADERS, "data": table}, status

    def on_model(name, scale):
        entry = zoo.entry(name)
        choices = scale_choices(name)
        values = [v for _, v in choices]
        new = scale if scale in values else (4 if 4 in values else values[0])
        return gr.Radio(choices=choices, value=new), entry.describe()

    def on_degradation(mode):
        return (gr.Accordion(visible=mode == "real-world", open=mode == "real-world"),
                gr.Radio(label="Upscale by" if mode == "none" else "Scale (downscale the original by, then upscale)"))

    def pick_tab(current):
        return gr.Tabs(selected=current if current in ("pair", "slider", "photo") else "pair")

    # -- layout -------------------------------------------------------------------------
    model_choices = [(e.label, e.name) for e in zoo.entries.values()]
    with gr.Blocks(title="facesr-hub · face super-resolution demo", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as app:
        gr.Markdown(
            "# facesr-hub · face super-resolution\n"
            "Upload a face — or a photo with a face in it — choose a model and how to make the low-resolution "
            "input, and compare the result with the original. The scores tell how close each result is to the "
            "original: **higher PSNR/SSIM** and **lower LPIPS** are better. Everything runs on this machine.",
            elem_id="title")
        note = _checkpoint_note(zoo)
        if note:
            gr.Markdown(note, elem_id="checkpoint-note")
        tab_state = gr.State("pair")
        degradation = gr.Radio([(v, k) for k, v in DEGRADATIONS.items()], value="bicubic",
                               label="Low-resolution input",
                               info="How the low-resolution input is made from your image.", render=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=4, min_width=340):
                image = upload_image(label="Face or photo", type="filepath", image_mode=None, format="png",
                                    sources=["upload", "clipboard"], height=300, elem_id="input-image",
                                    elem_classes="result-img")
                examples_slot = gr.Column()
                model = gr.Dropdown(model_choices, value=default_model, label="Model", interactive=True)
                model_info = gr.Markdown(zoo.entry(default_model).describe())
                degradation.render()
                # every scale is valid server-side (API calls); the page narrows the choices to the model's
                scale = gr.Radio([(f"×{s}", s) for s in SCALES], value=default_scale,
                                 label="Scale (downscale the original by, then upscale)",
                                 info="Only the scales the chosen model was trained for are offered.")
                with gr.Accordion("Real-world degradation settings", open=False, visible=False) as rw_box:
                    with gr.Row():
                        blur_kind = gr.Dropdown(list(pipeline.BLUR_KINDS), value="gaussian", label="Blur")
                        blur_size = gr.Slider(1, 15, value=3, step=2, label="Blur size (px, odd)")
                    noise = gr.Slider(0, 50, value=5, step=0.5, label="Noise σ (0–255 scale)")
                    jpeg_quality = gr.Slider(10, 100, value=75, step=1, label="JPEG quality")
                    seed = gr.Number(0, precision=0, minimum=0, label="Noise seed")
                    gr.Markdown("blur → downscale by the scale above → Gaussian noise → JPEG (AGRNet eq. 28).")
                with gr.Accordion("Face framing", open=False):
                    framing = gr.Radio([(v, k) for k, v in FRAMINGS.items()], value="auto", label="Framing",
                                       info="The models are trained on 128×128 face crops. In larger photos the "
                                            "face is found with OpenCV's frontal-face Haar cascade, cropped "
                                            "square with a margin and resized to 128×128.")
                    paste_back = gr.Checkbox(True, label="Paste the result back into the photo",
                                             info="Shown in the “In the photo” tab when a face was cropped.")
                with gr.Row():
                    run_btn = gr.Button("Upscale", variant="primary", elem_id="run")
                    compare_btn = gr.Button("Compare all models", variant="secondary")
            with gr.Column(scale=6, min_width=420):
                status = gr.Markdown("Pick an example or upload an image, then press **Upscale**.", elem_id="status",
                                     label="Status")
                with gr.Tabs(selected="pair") as tabs:
                    with gr.Tab("Side by side", id="pair") as tab_pair:
                        with gr.Row():
                            lr_img = gr.Image(label="Low-res input", format="png",
                                              interactive=False, height=300, elem_classes="result-img",
                                              buttons=["download", "fullscreen"])
                            sr_img = gr.Image(label="Super-resolved", format="png", interactive=False,
                                              height=300, elem_classes="result-img", buttons=["download", "fullscreen"])
                            hr_img = gr.Image(label="Original", format="png", interactive=False,
                                              height=300, elem_classes="result-img", buttons=["download", "fullscreen"])
                    with gr.Tab("Slider", id="slider") as tab_slider:
                        slider = gr.ImageSlider(label="Low-res input ⟷ super-resolved (drag)", format="png",
                                                interactive=False, max_height=520)
                    with gr.Tab("In the photo", id="photo") as tab_photo:
                        photo_img = gr.Image(label="Result pasted into the photo", format="png", interactive=False,
                                             height=420, buttons=["download", "fullscreen"])
                    with gr.Tab("Compare all", id="compare") as tab_compare:
                        gallery = gr.Gallery(label="Every model on the same input", format="png", columns=3,
                                             height=460, object_fit="contain", interactive=False)
                        compare_table = gr.Dataframe(headers=COMPARE_HEADERS, interactive=False, wrap=True,
                                                     label="Scores and run time")
                table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, label="Scores: model vs bicubic on the same input (PSNR in dB; ↑ higher is better, ↓ lower is better)",
                                     column_widths=["34%", "14%", "13%", "14%", "12%", "13%"])
                files = gr.File(label="Download (PNG: result, low-res input, photo)", file_count="multiple",
                                interactive=False)
                with gr.Accordion("Details (JSON)", open=False):
                    scores = gr.JSON(label="Run details and scores")
        with gr.Accordion("About the scores, the face detector and the examples", open=False):
            gr.Markdown(
                f"- **Scores**: {pipeline.PROTOCOL_NOTE}. They compare the result with the original image, so they "
                "exist only when the low-resolution input was made from your image.\n"
                "- **Bicubic row**: plain bicubic upscaling of the very same low-resolution input, the baseline.\n"
                f"- **Face detector**: {faces.CASCADE_NAME}, run by OpenCV from the file its wheel ships (nothing is downloaded).\n"
                "- **Examples**: CelebA test faces (FSRNet's 128×128 crops), for non-commercial research use only.\n"
                "- **Privacy**: uploads stay on this machine, in Gradio's temporary cache (cleared after at most 2 h).")

        with examples_slot:
            examples = gr.Examples(
                examples=[[str(EXAMPLES_DIR / "celeba_201606.jpg"), "bicubic"],
                          [str(EXAMPLES_DIR / "celeba_201631.jpg"), "real-world"],
                          [str(EXAMPLES_DIR / "celeba_201612.jpg"), "bicubic"],
                          [str(EXAMPLES_DIR / "photo_480x320_201625.jpg"), "bicubic"],
                          [str(EXAMPLES_DIR / "lowres_32px_201608.png"), "none"]],
                inputs=[image, degradation], label="Examples (CelebA test faces; click one to run it)",
                example_labels=["Face, bicubic", "Face, real-world", "Face with glasses",
                                "Photo (face is detected)", "Tiny 32 px face"],
                examples_per_page=5)

        # -- events -------------------------------------------------------------------------
        for t, tid in ((tab_pair, "pair"), (tab_slider, "slider"), (tab_photo, "photo"), (tab_compare, "compare")):
            t.select(lambda _id=tid: _id, outputs=tab_state, queue=False, api_visibility="private")
        model.change(on_model, [model, scale], [scale, model_info], queue=False, api_visibility="private")
        app.load(on_model, [model, scale], [scale, model_info], queue=False, api_visibility="private")
        degradation.change(on_degradation, degradation, [rw_box, scale], queue=False, api_visibility="private")

        up_inputs = [image, model, degradation, scale, framing, paste_back, blur_kind, blur_size, noise,
                     jpeg_quality, seed]
        up_outputs = [lr_img, sr_img, hr_img, slider, table, scores, photo_img, files, status]
        cmp_inputs = [image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality, seed]
        cmp_outputs = [gallery, compare_table, status]

        run_btn.click(upscale, up_inputs, up_outputs, api_name="upscale", concurrency_id="sr").then(
            pick_tab, tab_state, tabs, queue=False, api_visibility="private")
        compare_btn.click(lambda: (gr.Tabs(selected="compare"), "compare"), None, [tabs, tab_state], queue=False,
                          api_visibility="private").then(
            compare_all, cmp_inputs, cmp_outputs, api_name="compare_all", concurrency_id="sr")
        examples.load_input_event.then(upscale, up_inputs, up_outputs, api_visibility="private",
                                       concurrency_id="sr").then(
            pick_tab, tab_state, tabs, queue=False, api_visibility="private")
    app.zoo = zoo  # for tests and tools
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
