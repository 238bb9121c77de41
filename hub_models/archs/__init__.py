"""The architectures, one file per paper (`blocks.py` holds the parts they share).

Importing this package imports every module in it, and each architecture registers itself
in `hub_models.registry.MODELS` with `@register`: a new architecture is its own file only."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
