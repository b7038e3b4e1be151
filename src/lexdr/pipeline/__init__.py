"""One resumable command from unlabeled data to a trained, evaluated retriever (``lexdr run CONFIG``).

``config`` reads the TOML into the packages' own frozen settings; ``graph`` declares the method as a list of
stage specs (package stage function, arguments, fingerprinted config, dependencies); ``engine`` runs a stage
with fingerprints, skip-if-unchanged, resume and the manifest; ``run`` ties them together.
"""

from lexdr.pipeline.config import GenerationSettings, LanguageInput, RunConfig, RunSettings, load_config
from lexdr.pipeline.graph import StageSpec, method_graph
from lexdr.pipeline.run import run_pipeline

__all__ = ["LanguageInput", "RunConfig", "RunSettings", "GenerationSettings", "load_config", "StageSpec",
           "method_graph", "run_pipeline"]
