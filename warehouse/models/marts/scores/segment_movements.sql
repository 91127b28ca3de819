-- How customers moved between segments since the previous scoring, per model: each scored
-- as-of date's set is compared with the set of the model's previous scored as-of date. Where
-- an as-of date was scored by several versions of a model, the most recently scored version
-- stands for it. Customers the previous set did not hold come from 'not scored'. The model's
-- first scored as-of date has no previous one and no rows.
with

scores as (

    select * from {{ ref('stg_clv__scores') }}

),

score_sets as (

    select
        model_name,
        as_of_date,
        model_version,
        is_champion,
        row_number() over (
            partition by model_name, as_of_date
            order by max(scored_at) desc, model_version desc
        ) as recency_rank
    from scores
    group by model_name, as_of_date, model_version, is_champion

),

latest_score_sets as (

    select model_name, as_of_date, model_version, is_champion
    from score_sets
    where recency_rank = 1

),

consecutive_score_sets as (

    select
        model_name,
        as_of_date,
        model_version,
        is_champion,
        lag(as_of_date) over (partition by model_name order by as_of_date) as previous_as_of_date,
        lag(model_version) over (partition by model_name order by as_of_date)
            as previous_model_version
    from latest_score_sets

),

customer_moves as (

    select
        score_sets.model_name,
        score_sets.as_of_date,
        score_sets.model_version,
        score_sets.is_champion,
        score_sets.previous_as_of_date,
        score_sets.previous_model_version,
        coalesce(previous_scores.segment, 'not scored') as from_segment,
        scores.segment as to_segment,
        scores.predicted_clv,
        previous_scores.predicted_clv as previous_predicted_clv
    from consecutive_score_sets as score_sets
    inner join scores
        on score_sets.model_name = scores.model_name
        and score_sets.as_of_date = scores.as_of_date
        and score_sets.model_version = scores.model_version
    left join scores as previous_scores
        on score_sets.model_name = previous_scores.model_name
        and score_sets.previous_as_of_date = previous_scores.as_of_date
        and score_sets.previous_model_version = previous_scores.model_version
        and scores.customer_id = previous_scores.customer_id
    where score_sets.previous_as_of_date is not null

)

select
    model_name,
    as_of_date,
    model_version,
    is_champion,
    previous_as_of_date,
    previous_model_version,
    from_segment,
    to_segment,
    cast(count(*) as integer) as customers,
    {{ clv_exact_sum('predicted_clv') }} as predicted_clv_total,
    {{ clv_exact_sum('previous_predicted_clv') }} as previous_predicted_clv_total
from customer_moves
group by
    model_name,
    as_of_date,
    model_version,
    is_champion,
    previous_as_of_date,
    previous_model_version,
    from_segment,
    to_segment
