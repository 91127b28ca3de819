-- The BI models add up to the scores: per scored set, the customers of clv_by_segment and of
-- clv_by_cohort sum to the set's rows, and segment_movements holds every customer of each set
-- it describes. Every set is complete: its customers are distinct and, from 10 customers on,
-- every decile 1..10 is present. Returns the sets that do not reconcile.
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

)

select
    score_sets.as_of_date,
    score_sets.model_name,
    score_sets.model_version,
    score_sets.customers,
    segment_totals.customers as segment_customers,
    cohort_totals.customers as cohort_customers,
    movement_totals.customers as movement_customers
from score_sets
left join segment_totals
    on score_sets.as_of_date = segment_totals.as_of_date
    and score_sets.model_name = segment_totals.model_name
    and score_sets.model_version = segment_totals.model_version
left join cohort_totals
    on score_sets.as_of_date = cohort_totals.as_of_date
    and score_sets.model_name = cohort_totals.model_name
    and score_sets.model_version = cohort_totals.model_version
left join movement_totals
    on score_sets.as_of_date = movement_totals.as_of_date
    and score_sets.model_name = movement_totals.model_name
    and score_sets.model_version = movement_totals.model_version
where score_sets.distinct_customers != score_sets.customers
    or score_sets.deciles != least(score_sets.customers, 10)
    or segment_totals.customers is null
    or segment_totals.customers != score_sets.customers
    or cohort_totals.customers is null
    or cohort_totals.customers != score_sets.customers
    or movement_totals.customers != score_sets.customers
