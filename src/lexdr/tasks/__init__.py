"""Dev tasks: public QA sets turned into closed, self-supervised retrieval tasks (see ``devtasks``)."""

from lexdr.tasks.devtasks import DEV_TASKS, DevTask, find_data_dir, load_dev_task, write_dev_task

__all__ = ["DEV_TASKS", "DevTask", "find_data_dir", "load_dev_task", "write_dev_task"]
