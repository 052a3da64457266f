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
