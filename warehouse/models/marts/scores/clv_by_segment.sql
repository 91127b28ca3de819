-- Predicted CLV per business segment of every scored set (as-of date, model, model version):
-- how many customers each segment holds and what share of the predicted value.
with

scores as (

    select * from {{ ref('stg_clv__scores') }}

),

segments as (

    select
        as_of_date,
        model_name,
        model_version,
        is_champion,
        segment,
        max(horizon_days) as horizon_days,
        count(*) as customers,
        {{ clv_exact_sum('predicted_clv') }} as predicted_clv_total,
        {{ clv_exact_avg('p_purchase') }} as p_purchase_mean,
        max(scored_at) as scored_at
    from scores
    group by as_of_date, model_name, model_version, is_champion, segment

)

select
    as_of_date,
    model_name,
    model_version,
    is_champion,
    cast(horizon_days as integer) as horizon_days,
    segment,
    cast(customers as integer) as customers,
    cast(
        customers * 1.0
        / sum(customers) over (partition by as_of_date, model_name, model_version)
        as {{ clv_type_double() }}
    ) as customer_share,
    cast(predicted_clv_total as {{ clv_type_double() }}) as predicted_clv_total,
    cast(predicted_clv_total / customers as {{ clv_type_double() }}) as predicted_clv_mean,
    cast(
        predicted_clv_total
        / nullif(cast(sum(cast(predicted_clv_total as decimal(18, 6))) over (
            partition by as_of_date, model_name, model_version
        ) as {{ clv_type_double() }}), 0)  -- exact, as clv_exact_sum
        as {{ clv_type_double() }}
    ) as predicted_clv_share,
    cast(p_purchase_mean as {{ clv_type_double() }}) as p_purchase_mean,
    scored_at
from segments
