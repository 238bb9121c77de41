"""facesr-hub: the published face super-resolution architectures as Hub-ready PyTorch models.

    import hub_models
    model = hub_models.load("rafsr-x4")      # shipped checkpoint, saved folder or Hub repo id
    sr = model.upscale(lr)                   # (N,3,h,w) in [0,1] -> (N,3,h*s,w*s), tiled when large
    img = hub_models.upscale_image("photo.jpg", model="rafsr-x4", faces=False)   # -> PIL.Image
"""

from .base import CheckpointMismatchError, SRModel
from .images import ImageInputError
from .registry import MODELS, create, get_class, list_checkpoints, load, register
from .archs import (SRCNN, VDSR, AGRNet, AGRNetHR, AGRNetHRDiscriminator, Bicubic, CRLNet,
                    CRLNetDiscriminator, MFFCN, RAFSR, RDAN)
from .photo import read_image, upscale_image
from . import faces, tiling  # noqa: E402  (hub_models.faces.upscale_faces, hub_models.tiling.upscale_tiled)

__all__ = [
    "MODELS", "SRModel", "CheckpointMismatchError", "ImageInputError", "create", "get_class", "list_checkpoints", "load", "register",
    "Bicubic", "SRCNN", "VDSR",
    "MFFCN",
    "CRLNet", "CRLNetDiscriminator",
    "RAFSR",
    "RDAN",
    "AGRNet", "AGRNetHR", "AGRNetHRDiscriminator",
    "read_image", "upscale_image", "faces", "tiling",
]
