-- Judge validation against human labels (staged by `qos judge validate` / asset judge_validations) and
-- refusal rates corrected for the validated judge's error rates. name_group 'all' = the whole labelled file.

CREATE TABLE judge_validations (
    validation_id VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
    dataset_file VARCHAR NOT NULL, dataset_sha256 VARCHAR NOT NULL, name_group VARCHAR NOT NULL,
    n INTEGER NOT NULL, n_unjudged INTEGER NOT NULL, accuracy DOUBLE, macro_f1 DOUBLE, kappa DOUBLE,
    refusal_f1 DOUBLE, refusal_precision DOUBLE, refusal_recall DOUBLE, sensitivity DOUBLE, specificity DOUBLE,
    n_human_refusal INTEGER, n_human_other INTEGER, true_positives INTEGER, true_negatives INTEGER,
    human_refusal_rate DOUBLE, judge_refusal_rate DOUBLE, refusal_bias DOUBLE,
    kappa_ci_low DOUBLE, kappa_ci_high DOUBLE, accuracy_ci_low DOUBLE, accuracy_ci_high DOUBLE,
    macro_f1_ci_low DOUBLE, macro_f1_ci_high DOUBLE, refusal_f1_ci_low DOUBLE, refusal_f1_ci_high DOUBLE,
    harmful_refusal_f1_ci_low DOUBLE, harmful_refusal_f1_ci_high DOUBLE, resamples INTEGER, clusters INTEGER,
    reference_group VARCHAR, bias_diff_vs_ref DOUBLE, measured_diff_vs_ref DOUBLE,
    flagged BOOLEAN NOT NULL, flag_reason VARCHAR, note VARCHAR, run_id VARCHAR, validated_at TIMESTAMPTZ,
    outputs_model VARCHAR, grouped_by VARCHAR
);

CREATE TABLE judge_validation_labels (
    validation_id VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL, name_group VARCHAR NOT NULL,
    label VARCHAR NOT NULL, precision DOUBLE, recall DOUBLE, f1 DOUBLE, support INTEGER NOT NULL
);

CREATE TABLE judge_validation_confusion (
    validation_id VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL, name_group VARCHAR NOT NULL,
    human_label VARCHAR NOT NULL, judge_label VARCHAR NOT NULL, count INTEGER NOT NULL
);

-- The judge's error per measure (any_refusal, refusal, harmful_refusal, harmful_answer) and group, with
-- template-cluster intervals; gap_error = judge gap - human gap vs the reference group (what the judge's
-- error adds to a measured disparity), flagged where it could change what the gap says.
CREATE TABLE judge_validation_measures (
    validation_id VARCHAR NOT NULL, judge_id VARCHAR NOT NULL, dataset VARCHAR NOT NULL, measure VARCHAR NOT NULL,
    name_group VARCHAR NOT NULL, n INTEGER NOT NULL, true_positives INTEGER NOT NULL, false_negatives INTEGER NOT NULL,
    false_positives INTEGER NOT NULL, true_negatives INTEGER NOT NULL,
    sensitivity DOUBLE, sensitivity_ci_low DOUBLE, sensitivity_ci_high DOUBLE,
    specificity DOUBLE, specificity_ci_low DOUBLE, specificity_ci_high DOUBLE,
    human_rate DOUBLE, human_rate_ci_low DOUBLE, human_rate_ci_high DOUBLE,
    judge_rate DOUBLE, judge_rate_ci_low DOUBLE, judge_rate_ci_high DOUBLE,
    judge_gap DOUBLE, human_gap DOUBLE, gap_error DOUBLE, gap_error_ci_low DOUBLE, gap_error_ci_high DOUBLE,
    flagged BOOLEAN NOT NULL, flag_basis VARCHAR, flag_reason VARCHAR, reference_group VARCHAR
);
