-- One row per (generation, judge): the grain every metric table aggregates. A judgment joins only the exact
-- generation row it judged (generation_id hashes what produced the row and its response), so labels of
-- replaced responses, left behind by a judge that was not re-run, are never counted.
CREATE VIEW judged AS
SELECT g.model_key, g.model_version, g.prompt_format, g.gen_config_hash, j.judge_id, g.generation_id,
       g.prompt_id, g.sample, g.design, g.template_id, g.template_name, g.template_text, g.target_group,
       g.name, g.name_group, g.gender, g.popularity, g.prompt_text, g.response, j.label, j.reason,
       g.run_id AS generation_run_id, j.run_id AS judgment_run_id
FROM judgments j
JOIN generations g USING (generation_id, model_key, model_version, prompt_format, prompt_id, sample);

-- One human label per output: the label most annotators gave it; a tie goes to the latest import (the
-- adjudicating annotator, as in the paper's third annotator for disagreements).
CREATE VIEW human_label_consensus AS
SELECT generation_id, model_key, arg_max(label, struct_pack(votes := votes, latest := latest)) AS label,
       sum(votes)::INTEGER AS annotators
FROM (SELECT generation_id, model_key, label, count(*) AS votes, max(imported_at) AS latest
      FROM human_labels GROUP BY ALL)
GROUP BY generation_id, model_key;
