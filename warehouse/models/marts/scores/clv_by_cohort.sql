-- Predicted CLV per acquisition cohort (calendar month of the first order) of every scored set,
-- beside the net revenue the cohort brought before the as-of date. Customers missing from the
-- warehouse's population (scores kept from an earlier shop or import) have no cohort.
with

scores as (

    select * from {{ ref('stg_clv__scores') }}

),

customers_at_as_of_dates as (

    select
        customer_id,
        as_of_date,
        first_order_date,
        gross_revenue_to_date - refund_amount_to_date as net_revenue_to_date
    from {{ ref('int_customers_at_as_of_dates') }}

),

scores_with_cohorts as (

    select
        scores.as_of_date,
        scores.model_name,
        scores.model_version,
        scores.is_champion,
        scores.horizon_days,
        cast({{ dbt.date_trunc('month', 'customers_at_as_of_dates.first_order_date') }} as date)
            as cohort_month,
        scores.predicted_clv,
        scores.p_purchase,
        scores.scored_at,
        customers_at_as_of_dates.net_revenue_to_date
    from scores
    left join customers_at_as_of_dates
        on scores.customer_id = customers_at_as_of_dates.customer_id
        and scores.as_of_date = customers_at_as_of_dates.as_of_date

),

cohorts as (

    select
        as_of_date,
        model_name,
        model_version,
        is_champion,
        cohort_month,
        max(horizon_days) as horizon_days,
        count(*) as customers,
        {{ clv_exact_sum('predicted_clv') }} as predicted_clv_total,
        {{ clv_exact_avg('p_purchase') }} as p_purchase_mean,
        {{ clv_exact_sum('net_revenue_to_date') }} as net_revenue_to_date_total,
        max(scored_at) as scored_at
    from scores_with_cohorts
    group by as_of_date, model_name, model_version, is_champion, cohort_month

)

select
    as_of_date,
    model_name,
    model_version,
    is_champion,
    cast(horizon_days as integer) as horizon_days,
    cohort_month,
    cast(customers as integer) as customers,
    cast(predicted_clv_total as {{ clv_type_double() }}) as predicted_clv_total,
    cast(predicted_clv_total / customers as {{ clv_type_double() }}) as predicted_clv_mean,
    cast(p_purchase_mean as {{ clv_type_double() }}) as p_purchase_mean,
    cast(net_revenue_to_date_total as {{ clv_type_double() }}) as net_revenue_to_date_total,
    scored_at
from cohorts
