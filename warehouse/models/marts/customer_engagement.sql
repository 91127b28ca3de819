{{ config(materialized='external', format='parquet') }}
-- Engagement features per customer at each as-of date t, from identified page views before t.
-- Without page views in the raw data every count is 0 and days_since_last_view is null.
with

population as (

    select * from {{ ref('int_customers_at_as_of_dates') }}

)

select
    customer_id,
    as_of_date,
    cast(as_of_date as timestamp) as event_timestamp,
    cast(views_to_date as integer) as view_count,
    cast(sessions_to_date as integer) as session_count,
    cast(product_views_to_date as integer) as product_view_count,
    cast(
        case when sessions_to_date > 0 then orders_to_date * 1.0 / sessions_to_date end
        as {{ clv_type_double() }}
    ) as orders_per_session,
    cast({{ dbt.datediff('last_view_date', 'as_of_date', 'day') }} as integer)
        as days_since_last_view,
    cast(views_to_date - views_to_last_order_date as integer) as views_since_last_order
from population
