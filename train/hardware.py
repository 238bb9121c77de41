"""What CPU this is: moved to `hub_models.machine` (inference needs it too); re-exported here
for the training code."""

from hub_models.machine import (cpu_bf16_tier, cpu_class, cpu_flags, cpu_has_native_bf16,  # noqa: F401
                                cpu_model_name, cpuinfo_text)
