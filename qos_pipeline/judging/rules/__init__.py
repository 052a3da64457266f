"""The rules judge: deterministic regex rules over the response text (``judge.RulesJudge``), built from a
vocabulary of patterns (``vocabulary``) and evidence that a sentence was completed (``fills``)."""
