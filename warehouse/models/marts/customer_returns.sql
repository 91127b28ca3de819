{{ config(materialized='external', format='parquet') }}
-- Returns features per customer at each as-of date t, from returns issued before t (a return
-- after t never counts at t, even for an order placed before t).
with

population as (

    select * from {{ ref('int_customers_at_as_of_dates') }}

)

select
    customer_id,
    as_of_date,
    cast(as_of_date as timestamp) as event_timestamp,
    cast(returns_to_date as integer) as return_count,
    cast(refund_amount_to_date as {{ clv_type_double() }}) as refund_amount,
    cast(returns_to_date * 1.0 / orders_to_date as {{ clv_type_double() }}) as returns_per_order,
    cast(
        case when gross_revenue_to_date > 0 then refund_amount_to_date / gross_revenue_to_date end
        as {{ clv_type_double() }}
    ) as refund_share,
    cast(
        case when matched_returns_to_date > 0
            then matched_return_days_to_date * 1.0 / matched_returns_to_date end
        as {{ clv_type_double() }}
    ) as mean_days_to_return
from population
