"""One resumable command from unlabeled data to a trained, evaluated retriever (``lexdr run CONFIG``)."""

from lexdr.pipeline.config import LanguageInput, RunConfig, load_config
from lexdr.pipeline.run import run_pipeline

__all__ = ["LanguageInput", "RunConfig", "load_config", "run_pipeline"]
