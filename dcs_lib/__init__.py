"""dcs_lib: Dynamic Corrective Self-Distillation (Amara, Jain, Chadha, 2023) for GLUE fine-tuning.

Where a sample goes, module by module: :mod:`tasks` (what a GLUE task is) ->
:mod:`data` (TSV or hub -> tokenised batches) -> :mod:`models` (pretrained encoder)
-> :mod:`train` (the loop) with an objective from :mod:`methods` built on
:mod:`losses` and :mod:`weighting` -> :mod:`experiments` (grids, results files) ->
:mod:`report` (tables, plots).
"""

__version__ = "0.1.0"

from .errors import DCSError, NonFiniteLossError  # noqa: E402
from .tasks import TASKS, Task, get_task  # noqa: E402

__all__ = ["DCSError", "NonFiniteLossError", "TASKS", "Task", "get_task", "__version__"]
