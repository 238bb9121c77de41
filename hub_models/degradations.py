"""PLACEHOLDER written by the lead so model tests can run; the degradations engineer replaces this file entirely."""
import torch.nn.functional as F


def imresize(x, scale=None, size=None, antialias=True):
    if size is None:
        size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=antialias)
