"""The architectures, one file per paper (`blocks.py` holds the parts they share). Importing
this package registers every architecture in `hub_models.registry.MODELS`."""

from .baselines import SRCNN, VDSR, Bicubic
from .mffcn import MFFCN
from .crlnet import CRLNet, CRLNetDiscriminator
from .rafsr import RAFSR
from .rdan import RDAN
from .agrnet import AGRNet, AGRNetHR, AGRNetHRDiscriminator

__all__ = ["Bicubic", "SRCNN", "VDSR", "MFFCN", "CRLNet", "CRLNetDiscriminator", "RAFSR", "RDAN",
           "AGRNet", "AGRNetHR", "AGRNetHRDiscriminator"]
