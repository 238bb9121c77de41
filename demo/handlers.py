"""The demo's event handlers: what each button does, free of the layout (`demo.ui`).

`Handlers(zoo)` holds the model catalogue and the download folder; its methods are the
functions the events call.  A failed request raises `gr.Error` (the API caller gets the
message) and leaves the message for `on_failure`, which writes it into the status line
and clears the previous run's outputs, so the page never shows stale results.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import gradio as gr

from hub_models.images import tensor_to_rgb

from . import imageio, pipeline, whole
from .catalogue import SCALES, DemoError, ModelEntry, ModelZoo
from .degradation import Degradation
from .framing import check_framing
from .results import MISSING, SCORE_METRICS, UpscaleResult, metric_header, metric_text, scorable

log = logging.getLogger("facesr.demo")

TABLE_HEADERS = ["Method", *map(metric_header, SCORE_METRICS), "Time (ms)"]
COMPARE_HEADERS = ["Model", *map(metric_header, SCORE_METRICS), "Time (ms)", "Note"]
#: outputs of /upscale and /compare_all, in order (on_failure clears the same)
N_UPSCALE_OUTPUTS = 9


class Outbox:
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


def stem(path: str | None) -> str:
    s = Path(path).stem if path else "image"
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("._")[:40]
    return s or "image"


def score_row(label: str, sc: dict | None, ms: float | None) -> list[str]:
    """A table row: the label, each of SCORE_METRICS, the run time in ms."""
    sc = sc or {}
    return [label, *(metric_text(m, sc.get(m)) for m in SCORE_METRICS), MISSING if ms is None else f"{ms:.0f}"]


def short_label(entry: ModelEntry) -> str:
    if entry.untrained:
        return f"{entry.display} (untrained)"
    return entry.display if entry.folder is None else f"{entry.display} ({entry.name})"


def make_degradation(degradation, scale, blur_kind, blur_size, noise, jpeg_quality, seed) -> Degradation:
    try:
        return Degradation(
            mode=str(degradation or "none"), scale=int(scale if scale is not None else 4),
            blur_kind=str(blur_kind or "gaussian"), blur_size=int(blur_size if blur_size is not None else 3),
            noise=float(noise if noise is not None else 0), jpeg_quality=int(jpeg_quality or 75),
            seed=int(seed or 0))
    except (TypeError, ValueError) as err:
        if isinstance(err, DemoError):
            raise
        raise DemoError(f"Invalid setting: {err}") from None


def user_message(err: BaseException) -> tuple[str, str]:
    """(title, message) for the person, for any failure."""
    if isinstance(err, (DemoError, imageio.UploadError)):
        return "Cannot process this image", str(err)
    log.exception("unexpected error in the demo")
    return "Error", (f"Something went wrong while processing this image ({type(err).__name__}). The demo is still "
                     "running: try another image or setting.")


def degradation_note(zoo: ModelZoo, mode: str) -> str:
    """What the chosen low-resolution mode means for the results (shown under the choice)."""
    if mode == "none":
        return ("The whole image is upscaled by the chosen factor (in tiles), with a progress bar and an estimated "
                "time before it starts. No ground truth, so no scores.")
    if mode == "real-world":
        fit = zoo.trained_for("real-world")
        if fit:
            return f"Models trained on this degradation: {', '.join(f'`{n}`' for n in fit)}."
        return ("⚠️ **No shipped model was trained on real-world degradation yet**: every checkpoint here was trained "
                "on bicubic downscaling, so expect them to gain little over bicubic on this input.")
    return "The papers' benchmark: the original is bicubic-downscaled, upscaled again and scored against itself."


class Handlers:
    """The functions behind the buttons, bound to one model catalogue."""

    def __init__(self, zoo: ModelZoo):
        self.zoo = zoo
        self.outbox = Outbox()
        self.default_model = zoo.default_model()
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- errors -------------------------------------------------------------------------
    def _fail(self, err: BaseException, request: gr.Request | None) -> gr.Error:
        title, message = user_message(err)
        key = getattr(request, "session_hash", None) or ""
        with self._lock:
            self._errors[key] = f"**⚠️ {title}:** {message}"
            while len(self._errors) > 256:
                self._errors.pop(next(iter(self._errors)))
        return gr.Error(message, title=title, print_exception=False)

    def last_error(self, request: gr.Request | None) -> str:
        key = getattr(request, "session_hash", None) or ""
        with self._lock:
            return self._errors.pop(key, "**⚠️ The request failed.** Please try again.")

    def on_upscale_failure(self, request: gr.Request):
        """Clear every output of /upscale and put the error into the status line."""
        return (*([None] * (N_UPSCALE_OUTPUTS - 1)), self.last_error(request))

    def on_compare_failure(self, request: gr.Request):
        return None, None, self.last_error(request)

    # -- /upscale -----------------------------------------------------------------------
    def upscale(self, image, model, degradation, scale, framing, paste_back, blur_kind, blur_size, noise,
                jpeg_quality, seed, request: gr.Request = None, progress=gr.Progress()):
        """Super-resolve an image. Yields the outputs: the low-resolution input (enlarged,
        nearest), the result, the original (None without ground truth), a before/after pair,
        a score table, a dict of the run (scores per method: psnr_y, ssim_y, psnr_rgb, lpips,
        time_ms), the result pasted into the photo (or None), PNG files and a status line.
        Mode "none" upscales the whole image; its first update gives the estimated time."""
        try:
            yield from self._upscale(image, model, degradation, scale, framing, paste_back, blur_kind, blur_size,
                                     noise, jpeg_quality, seed, progress)
        except gr.Error:
            raise
        except Exception as err:  # every failure becomes a readable message; the server goes on
            raise self._fail(err, request) from None

    def _upscale(self, image, model, degradation, scale, framing, paste_back, blur_kind, blur_size, noise,
                 jpeg_quality, seed, progress):
        deg = make_degradation(degradation, scale, blur_kind, blur_size, noise, jpeg_quality, seed)
        name, framing = str(model or self.default_model), check_framing(str(framing or "auto"))
        loaded = imageio.load_image(image)
        if deg.mode == "none":
            progress(0, desc="Timing the model on this machine")
            plan = whole.plan_whole(self.zoo, loaded.rgb, name, deg.scale, faces_only=framing == "face",
                                    source=f"{stem(image)}.png")
            entry = self.zoo.entry(name)
            wait = f"⏳ **{entry.display}**: upscaling {plan.describe()}…"
            yield (*([None] * (N_UPSCALE_OUTPUTS - 1)), wait)
            progress(0, desc=f"Estimated {whole.fmt_seconds(plan.seconds)}")

            def tick(done, total):
                progress((int(done), max(int(total), 1)), desc=f"Upscaling (estimated {whole.fmt_seconds(plan.seconds)})",
                         unit="tiles")

            res = whole.run_whole(self.zoo, plan, progress=tick)
        else:
            res = pipeline.run_upscale(self.zoo, loaded.rgb, name, deg, framing=framing, paste=bool(paste_back))
        yield self._upscale_outputs(res, deg, image, loaded.notes)

    def _upscale_outputs(self, res: UpscaleResult, deg: Degradation, image, load_notes: list[str]):
        notes = load_notes + res.notes
        if deg.mode == "real-world" and not self.zoo.trained_for("real-world") and res.model.folder is not None:
            notes.append("No shipped model was trained on real-world degradation yet (all were trained on bicubic).")
        for n in notes:
            if n.startswith(("No face", "The image was reduced", "The input was reduced", "The photo was scaled",
                             "The full ")):
                gr.Warning(n)
        out_dir = self.outbox.new()
        st, s = stem(image), deg.scale
        files = [str(imageio.save_png(res.sr, out_dir / f"{st}_{res.model.name}_x{s}.png")),
                 str(imageio.save_png(res.lr, out_dir / f"{st}_lowres_{deg.mode}_x{s}.png"))]
        if res.photo_result is not None:
            files.append(str(imageio.save_png(res.photo_result, out_dir / f"{st}_{res.model.name}_x{s}_photo.png")))
        rows = [score_row(short_label(res.model), res.scores.get(res.model.name), res.times_ms.get(res.model.name))]
        if res.model.name != "bicubic" and "bicubic" in res.times_ms:
            rows.append(score_row("Bicubic (same input)", res.scores.get("bicubic"), res.times_ms.get("bicubic")))
        table = {"headers": TABLE_HEADERS, "data": rows}
        lr_h, lr_w = res.lr.shape[:2]
        status = (f"**{res.model.display}** on {deg.describe()}: {lr_w}×{lr_h} → {res.sr.shape[1]}×{res.sr.shape[0]} px "
                  f"in {res.times_ms[res.model.name]:.0f} ms.")
        if res.scores:
            sc = res.scores[res.model.name]
            status += (f" PSNR-Y {metric_text('psnr_y', sc['psnr_y'])} dB, SSIM {metric_text('ssim_y', sc['ssim_y'], digits=3)}, "
                       f"LPIPS {metric_text('lpips', sc['lpips'], digits=3)}.")
        if notes:
            status += "\n\n" + "\n".join(f"- {n}" for n in notes)
        return (res.lr_display, res.sr, res.hr, (res.lr_display, res.sr), table, res.summary(),
                res.photo_result, files, status)

    # -- /compare_all -------------------------------------------------------------------
    def compare_all(self, image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality, seed,
                    request: gr.Request = None, progress=gr.Progress()):
        """Run every model that works at the chosen scale on the same low-resolution input.
        Returns a gallery (input, each model, original), a table with each model's scores and
        run time, and a status line."""
        try:
            return self._compare_all(image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality,
                                     seed, progress)
        except gr.Error:
            raise
        except Exception as err:
            raise self._fail(err, request) from None

    def _compare_all(self, image, degradation, scale, framing, blur_kind, blur_size, noise, jpeg_quality, seed,
                     progress):
        zoo = self.zoo
        deg = make_degradation(degradation, scale, blur_kind, blur_size, noise, jpeg_quality, seed)
        loaded = imageio.load_image(image)
        progress(0, desc="Preparing the input")

        def tick(i, n, label):
            progress((i, max(n, 1)), desc=f"Running {label}" if label != "done" else "Done", unit="models")

        prep, rows = pipeline.run_compare(zoo, loaded.rgb, deg, framing=str(framing or "auto"), progress=tick)
        lr8 = tensor_to_rgb(prep.lr)
        out_size = (lr8.shape[1] * deg.scale, lr8.shape[0] * deg.scale)
        gallery = [(imageio.nearest_upscale(lr8, out_size), f"Input {lr8.shape[1]}×{lr8.shape[0]} ({deg.describe()})")]
        table = []
        for r in rows:
            label = short_label(zoo.entries[r.name])
            if r.sr is None:
                table.append([label, *[MISSING] * (len(SCORE_METRICS) + 1), f"skipped: {r.skipped}"])
                continue
            cap = label + (f" · {metric_text('psnr_y', r.scores['psnr_y'])} dB" if r.scores else "") + f" · {r.time_ms:.0f} ms"
            gallery.append((r.sr, cap))
            table.append(score_row(label, r.scores, r.time_ms) + [""])
        if prep.hr is not None:
            gallery.append((tensor_to_rgb(prep.hr), "Original (ground truth)"))
        ran = sum(r.sr is not None for r in rows)
        status = f"Compared {ran} model(s) on {deg.describe()}."
        skipped = [r for r in rows if r.sr is None]
        if skipped:
            status += f" {len(skipped)} skipped (see the table)."
        if not scorable(prep.hr):
            status += " No scores: " + ("no ground truth in this mode." if prep.hr is None else "image too small.")
        notes = loaded.notes + prep.framed.notes
        if deg.mode == "real-world":
            notes.append(degradation_note(zoo, "real-world").replace("⚠️ ", "").replace("**", ""))
        if notes:
            status += "\n\n" + "\n".join(f"- {n}" for n in notes)
        return gallery, {"headers": COMPARE_HEADERS, "data": table}, status

    # -- small UI updates ---------------------------------------------------------------
    def scale_choices(self, name: str) -> list[tuple[str, int]]:
        return [(f"×{s}", s) for s in self.zoo.entry(name).scales if s in SCALES]

    def on_model(self, name, scale):
        entry = self.zoo.entry(name)
        choices = self.scale_choices(name)
        values = [v for _, v in choices]
        new = scale if scale in values else (4 if 4 in values else values[0])
        return gr.Radio(choices=choices, value=new), entry.describe()

    def on_degradation(self, mode, model=None):
        """Show the real-world settings in that mode, and put the models trained on it first in the
        menu, switching to the first of them (the others stay selectable)."""
        label = "Upscale by" if mode == "none" else "Scale (downscale the original by, then upscale)"
        fit = self.zoo.trained_for(mode)
        chosen = fit[0] if mode == "real-world" and fit and model not in fit else model
        return (gr.Accordion(visible=mode == "real-world", open=mode == "real-world"), gr.Radio(label=label),
                degradation_note(self.zoo, mode), gr.Dropdown(choices=self.zoo.choices(mode), value=chosen))
