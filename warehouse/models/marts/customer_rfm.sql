{{ config(materialized='external', format='parquet') }}
-- RFM features per customer at each as-of date t, from events strictly before t. A customer
-- appears from the first as-of date after their first order. Feast reads the Parquet export.
with

at_as_of as (

    select * from {{ ref('int_customers_at_as_of_dates') }}

)

select
    customer_id,
    cutoff_date as as_of_date,
    cast(cutoff_date as timestamp) as event_timestamp,
    -- BTYD convention (lifetimes): repeat purchase days, ages in days, mean repeat-day value
    cast(order_days_to_date - 1 as integer) as frequency,
    cast({{ dbt.datediff('first_order_date', 'last_order_date', 'day') }} as integer)
        as recency_days,
    cast({{ dbt.datediff('first_order_date', 'cutoff_date', 'day') }} as integer) as t_days,
    cast(
        case
            when order_days_to_date > 1
                then (gross_revenue_to_date - first_order_day_revenue) / (order_days_to_date - 1)
            else 0
        end as {{ clv_type_double() }}
    ) as monetary_value,
    -- business convention
    cast({{ dbt.datediff('last_order_date', 'cutoff_date', 'day') }} as integer)
        as days_since_last_order,
    cast(orders_to_date as integer) as order_count,
    cast(gross_revenue_to_date as {{ clv_type_double() }}) as gross_revenue,
    cast(refund_amount_to_date as {{ clv_type_double() }}) as refund_amount,
    cast(gross_revenue_to_date - refund_amount_to_date as {{ clv_type_double() }}) as net_revenue,
    cast(gross_revenue_to_date / orders_to_date as {{ clv_type_double() }}) as avg_order_value,
    cast(first_order_day_revenue as {{ clv_type_double() }}) as first_order_value
from at_as_of
