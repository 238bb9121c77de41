"""`python -m hub_models upscale IN [OUT] --model NAME --scale S [--faces]`: a photo or a folder.

IN a file: OUT is a file or a folder (default: next to IN, named STEM_xS.EXT). IN a folder:
its image files (not sub-folders) go to OUT (default: the folder IN_xS beside it) under the
same names. Unreadable files are skipped with a message; an input is never written over,
an existing output only with --overwrite. A tqdm bar shows the files (and the tiles of the
current one); a summary ends the run. Exit status: 0 all done, 1 some files failed, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

#: output formats PIL writes, by suffix; other suffixes are written as PNG
WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("upscale", help="upscale a photo or a folder of photos",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="an image file or a folder of images")
    p.add_argument("output", metavar="OUT", nargs="?", help="output file or folder (default: beside IN, with _xS)")
    p.add_argument("--model", default="rafsr-x4", help="checkpoint name, model folder or 'bicubic' (default rafsr-x4)")
    p.add_argument("--scale", type=int, help="scale (default: the model's)")
    p.add_argument("--faces", action="store_true",
                   help="upscale each detected face with the model and the rest with --background")
    p.add_argument("--background", default="bicubic", choices=["bicubic", "rdan"], help="with --faces (default bicubic)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    p.set_defaults(func=run)
    return p


def _out_name(src: Path, scale: int) -> str:
    suffix = src.suffix.lower() if src.suffix.lower() in WRITABLE else ".png"
    return f"{src.stem}_x{scale}{suffix}"


def plan(inp: Path, out: Path | None, scale: int) -> list[tuple[Path, Path]]:
    """(source, destination) pairs for IN and OUT."""
    if inp.is_dir():
        dest = out or inp.with_name(f"{inp.name}_x{scale}")
        files = sorted(p for p in inp.iterdir() if p.is_file() and not p.name.startswith("."))
        return [(f, dest / (f.name if f.suffix.lower() in WRITABLE else f.stem + ".png")) for f in files]
    if out is None:
        return [(inp, inp.with_name(_out_name(inp, scale)))]
    if out.is_dir() or str(out).endswith(("/", "\\")):
        return [(inp, out / _out_name(inp, scale))]
    return [(inp, out)]


def _same(a: Path, b: Path) -> bool:
    try:
        return b.exists() and a.samefile(b)
    except OSError:
        return False


def _save(image, dst: Path) -> None:
    fmt = WRITABLE.get(dst.suffix.lower(), "PNG")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    image.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    tmp.replace(dst)


def run(args) -> int:
    from tqdm import tqdm

    import hub_models

    inp = Path(args.input).expanduser()
    if not inp.exists():
        print(f"error: {inp} does not exist (give an image file or a folder)", file=sys.stderr)
        return 2
    try:
        model = hub_models.load(args.model)
        scale = model._resolve_scale(args.scale)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pairs = plan(inp, Path(args.output).expanduser() if args.output else None, scale)
    if not pairs:
        print(f"error: {inp} has no files", file=sys.stderr)
        return 2
    inputs = [src for src, _ in pairs]
    start = time.perf_counter()
    done, failed, skipped = [], [], []
    bar = tqdm(pairs, unit="file", desc=f"{args.model} x{scale}", file=sys.stderr, dynamic_ncols=True)
    for src, dst in bar:
        bar.set_postfix_str(src.name[:30])
        if any(_same(i, dst) for i in inputs) or dst.resolve() in {i.resolve() for i in inputs}:
            failed.append((src, f"its output {dst} is an input; choose another OUT"))
            bar.write(f"skipped {src}: its output {dst} is an input file, which is never overwritten")
            continue
        if dst.exists() and not args.overwrite:
            skipped.append(src)
            bar.write(f"skipped {src}: {dst} exists (use --overwrite to replace it)")
            continue

        def tiles(i: int, n: int) -> None:
            if n > 1:
                bar.set_postfix_str(f"{src.name[:30]} tile {i}/{n}")

        try:
            image = hub_models.upscale_image(src, model=model, scale=scale, faces=args.faces, progress=tiles) \
                if not args.faces or args.background == "bicubic" else _faces_rdan(src, model, scale, tiles)
            _save(image, dst)
        except hub_models.ImageInputError as err:  # its message starts with the file's path
            why = str(err).removeprefix(f"{src}: ")
            failed.append((src, why))
            bar.write(f"skipped {src}: {why}")
            continue
        except (OSError, ValueError, RuntimeError) as err:
            failed.append((src, f"{type(err).__name__}: {err}"))
            bar.write(f"failed {src}: {type(err).__name__}: {err}")
            continue
        done.append(dst)
    bar.close()
    seconds = time.perf_counter() - start
    print(f"{len(pairs)} file(s) in {seconds:.1f} s: {len(done)} upscaled x{scale} with {args.model}, "
          f"{len(failed)} failed, {len(skipped)} skipped (output exists)"
          + (f"; written to {pairs[0][1].parent}" if done else ""))
    for src, why in failed:
        print(f"  failed: {src.name}: {why}")
    return 1 if failed else 0


def _faces_rdan(src: Path, model, scale: int, progress):
    from PIL import Image

    from .faces import upscale_faces
    from .photo import read_image

    out, _ = upscale_faces(read_image(src), model, scale, background="rdan", progress=progress)
    return Image.fromarray(out)
