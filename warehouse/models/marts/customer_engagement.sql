{{ config(materialized='external', format='parquet') }}
-- Engagement features per customer at each as-of date t, from identified page views before t.
-- Without page views in the raw data every count is 0 and days_since_last_view is null.
with

population as (

    select customer_id, as_of_date, orders_to_date
    from {{ ref('int_customers_at_as_of_dates') }}

),

view_states as (

    select * from {{ ref('int_customer_view_states_snapshotted') }}

)

select
    population.customer_id,
    population.as_of_date,
    cast(population.as_of_date as timestamp) as event_timestamp,
    cast(coalesce(view_states.views_to_date, 0) as integer) as view_count,
    cast(coalesce(view_states.sessions_to_date, 0) as integer) as session_count,
    cast(coalesce(view_states.product_views_to_date, 0) as integer) as product_view_count,
    cast(
        case when view_states.sessions_to_date > 0
            then population.orders_to_date * 1.0 / view_states.sessions_to_date end
        as {{ clv_type_double() }}
    ) as orders_per_session,
    cast({{ dbt.datediff('view_states.last_view_date', 'population.as_of_date', 'day') }}
        as integer) as days_since_last_view,
    cast(coalesce(view_states.views_to_date - view_states.views_to_last_order_date, 0)
        as integer) as views_since_last_order
from population
left join view_states
    on population.customer_id = view_states.customer_id
    and population.as_of_date = view_states.as_of_date
