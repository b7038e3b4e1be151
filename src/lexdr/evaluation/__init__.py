"""Evaluation of runs against qrels, trec_eval-exact (tested against pytrec_eval)."""

from lexdr.evaluation.metrics import DEFAULT_METRICS, evaluate, evaluate_per_query, trec_order
from lexdr.evaluation.gain import gain_verdict, training_gain
from lexdr.evaluation.stage import EvaluateConfig, EvaluateInputs, evaluate_stage

__all__ = ["DEFAULT_METRICS", "evaluate", "evaluate_per_query", "trec_order", "EvaluateInputs", "EvaluateConfig", "evaluate_stage",
           "training_gain",
           "gain_verdict"]
