"""Prompts for EHRSHOT-style prediction. The answer rules are stated so a model can meet the verifier."""

from ehrmind.contract import Contract, Wording

_TASK = (
    "You are a clinical prediction assistant. You are given a patient's structured electronic health record "
    "up to a prediction time (demographics, lab results and vital signs with units and flags, visits, "
    "conditions, procedures and medications, most recent first) and a question about what happens next. "
    "Nothing after the prediction time is shown. "
)
TASK_TEXT = _TASK
CONTRACT = Contract(
    answer_key="prediction",
    wording=Wording(
        steps="weigh the risk factors and the evidence in the record.",
        what="answer",
        shape='{"prediction": "yes"} or {"prediction": "no"}',
        notes='You may add your probability that the answer is yes, a number from 0 to 1: {"prediction": "yes", '
        '"probability": 0.8}.',
        evidence="the events in the patient's record that bear on the question",
    ),
)
"""EHRSHOT's output contract: `{"prediction": "yes" | "no"}` (the contract writes the instruction sentence)."""
REASONING_SYSTEM = TASK_TEXT + CONTRACT.sentence()
DIRECT_SYSTEM = TASK_TEXT + CONTRACT.configured("direct").sentence()

USER_TEMPLATE = "Patient record:\n{timeline}\n\nQuestion: {question}"
