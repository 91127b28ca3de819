-- The scored sets whose BI models do not add up to the scores: per (as_of_date, model_name,
-- model_version), the customers of clv_by_segment and of clv_by_cohort sum to the set's rows,
-- and segment_movements holds every customer of each set it describes; every set is complete:
-- its customers are distinct and, from 10 customers on, every decile 1..10 is present.
-- Empty when everything reconciles. The one definition of the rule: the data test
-- assert_score_marts_reconcile fails on any row, and `clv publish` refuses to publish a
-- snapshot while it has rows (clv_models/warehouse/bi.py).
{{ config(materialized='view', contract={'enforced': false}) }}

with

score_sets as (

    select
        as_of_date,
        model_name,
        model_version,
        count(*) as customers,
        count(distinct customer_id) as distinct_customers,
        count(distinct clv_decile) as deciles
    from {{ ref('stg_clv__scores') }}
    group by as_of_date, model_name, model_version

),

segment_totals as (

    select as_of_date, model_name, model_version, sum(customers) as customers
    from {{ ref('clv_by_segment') }}
    group by as_of_date, model_name, model_version

),

cohort_totals as (

    select as_of_date, model_name, model_version, sum(customers) as customers
    from {{ ref('clv_by_cohort') }}
    group by as_of_date, model_name, model_version

),

movement_totals as (

    select as_of_date, model_name, model_version, sum(customers) as customers
    from {{ ref('segment_movements') }}
    group by as_of_date, model_name, model_version

),

-- Sets of the BI models that the scores no longer have count too (a full outer join).
bi_sets as (

    select as_of_date, model_name, model_version from segment_totals
    union
    select as_of_date, model_name, model_version from cohort_totals
    union
    select as_of_date, model_name, model_version from movement_totals
    union
    select as_of_date, model_name, model_version from score_sets

)

select
    bi_sets.as_of_date,
    bi_sets.model_name,
    bi_sets.model_version,
    score_sets.customers,
    segment_totals.customers as segment_customers,
    cohort_totals.customers as cohort_customers,
    movement_totals.customers as movement_customers
from bi_sets
left join score_sets using (as_of_date, model_name, model_version)
left join segment_totals using (as_of_date, model_name, model_version)
left join cohort_totals using (as_of_date, model_name, model_version)
left join movement_totals using (as_of_date, model_name, model_version)
where score_sets.customers is null
    or score_sets.distinct_customers != score_sets.customers
    or score_sets.deciles != least(score_sets.customers, 10)
    or segment_totals.customers is distinct from score_sets.customers
    or cohort_totals.customers is distinct from score_sets.customers
    or movement_totals.customers != score_sets.customers
