"""facesr-hub: the published face super-resolution architectures as Hub-ready PyTorch models.

    import hub_models
    model = hub_models.load("rafsr-x4")      # shipped checkpoint, saved folder or Hub repo id
    sr = model.upscale(lr)                   # (N,3,h,w) in [0,1] -> (N,3,h*s,w*s), tiled when large
    img = hub_models.upscale_image("photo.jpg", model="rafsr-x4", faces=False)   # -> PIL.Image
    hub_models.capabilities("rafsr")         # scales, input kind, ... of an architecture

Every registered architecture class (and its GAN discriminator) is exported under its class
name, e.g. `hub_models.RAFSR`, `hub_models.CRLNetDiscriminator`.
"""

from .base import CheckpointMismatchError, SRModel
from .images import ImageInputError
from .registry import (MODELS, Capabilities, capabilities, create, get_class, list_checkpoints, load,
                       parameter_count, register)
from . import archs  # noqa: F401  (imports every architecture module: they register themselves)
from .photo import read_image, upscale_image
from . import faces, tiling  # noqa: E402  (hub_models.faces.upscale_faces, hub_models.tiling.upscale_tiled)

#: the registered architecture classes and their discriminators, by class name
ARCHITECTURES = {cls.__name__: cls for cls in MODELS.values()}
ARCHITECTURES.update({cls.discriminator_cls.__name__: cls.discriminator_cls
                      for cls in MODELS.values() if cls.discriminator_cls is not None})
globals().update(ARCHITECTURES)

__all__ = [
    "MODELS", "SRModel", "Capabilities", "CheckpointMismatchError", "ImageInputError", "capabilities", "create",
    "get_class", "list_checkpoints", "load", "parameter_count", "register", *sorted(ARCHITECTURES),
    "read_image", "upscale_image", "faces", "tiling",
]
