"""Where a language's data comes from: dev tasks (public QA sets turned into closed, self-supervised retrieval
tasks, see ``devtasks``), public datasets by name (``sources``), or local files; ``prepare`` is the data stage."""

from lexdr.tasks.devtasks import DEV_TASKS, DevTask, find_data_dir, load_dev_task, write_dev_task
from lexdr.tasks.prepare import LanguageInput, check_inputs, data_stage, prepare_language, take_evenly

__all__ = ["DEV_TASKS", "DevTask", "find_data_dir", "load_dev_task", "write_dev_task", "LanguageInput", "data_stage",
           "prepare_language", "take_evenly", "check_inputs"]
