"""TREC Clinical Trials patient–trial matching: topics, qrels, trial corpora, splits, verifier, ranking."""

from ehrmind.tasks.trec_ct.labels import LABELS, SIGIR_LABELS, SYNONYMS, parse_prediction
from ehrmind.tasks.trec_ct.task import TrecCtTask

__all__ = ["LABELS", "SIGIR_LABELS", "SYNONYMS", "TrecCtTask", "parse_prediction"]
