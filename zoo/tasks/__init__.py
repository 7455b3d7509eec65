"""Tasks: one file per restoration problem (cs, cassi, pansharpen, flash); see :mod:`zoo.tasks.base`.

    >>> from zoo.tasks import get_task
    >>> get_task("cs").floor_name
    'linear initial estimate'
"""

from zoo.tasks.base import Option, Task, all_tasks, get_task, register_task, restore_file, tasks_adapting, tasks_taking

__all__ = ["Task", "Option", "get_task", "all_tasks", "register_task", "restore_file", "tasks_adapting",
           "tasks_taking"]
