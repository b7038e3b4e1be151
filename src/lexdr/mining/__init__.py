"""Hybrid mining: pseudo labels where BM25 and a dense encoder agree, hard negatives where they disagree.

Split as candidates → teacher scores → rules → statistics, each a pure function over runs, so every piece is
unit-tested on hand-made runs and the stage (``mine``) only adds file I/O and retrieval.
"""

from lexdr.mining.candidates import Candidate, candidate_table
from lexdr.mining.rules import RULES, MineConfig, MinedExample, mine_from_runs
from lexdr.mining.stage import MineInputs, mine, mine_stage, mined_teacher_temperature, read_mined, write_mined
from lexdr.mining.stats import rule_quality

__all__ = ["Candidate", "candidate_table", "RULES", "MineConfig", "MinedExample", "mine_from_runs", "mine",
           "MineInputs", "mine_stage", "read_mined", "write_mined", "rule_quality", "mined_teacher_temperature"]
