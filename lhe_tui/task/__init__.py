"""The dict-sum task: words, seeded generation, dataset loading, prompts and the answer parser."""

from lhe_tui.task.dataset import load_dataset
from lhe_tui.task.generate import generate_task, make_dictionary
from lhe_tui.task.model import Sample, Task

__all__ = ["Sample", "Task", "generate_task", "load_dataset", "make_dictionary"]
