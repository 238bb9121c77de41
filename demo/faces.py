"""The demo's face helpers: detection, framing, cropping and pasting live in the library
(`hub_models.faces`, which also has `upscale_faces` for every face in a photo); this
module re-exports them under the names the demo has always used."""

from hub_models.faces import (  # noqa: F401
    CASCADE_FILE,
    CASCADE_NAME,
    FEATHER,
    FRAME_SCALE,
    FRAME_SHIFT,
    Box,
    crop,
    detect_faces,
    face_frame,
    feather_mask,
    paste_back,
    resize,
    to_gray,
    upscale_faces,
)
