-- The BI models add up to the scores: fails on every scored set that does not reconcile (the
-- rule is the model score_sets_unreconciled, which `clv publish` checks too).
select * from {{ ref('score_sets_unreconciled') }}
