-- Running page-view totals per customer after each day with a view or an order, with the next
-- such day, like int_customer_days_accumulated for orders. Order days are included (with no
-- views) so that the views up to the last purchase day are known: views since the last order
-- before t = views before t - views up to that order day.
{%- set running_window -%}
    over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        )
{%- endset %}
with

days as (

    select * from {{ ref('int_customer_activity_days_joined') }}

),

accumulated as (

    select
        customer_id,
        activity_date,
        order_count > 0 as is_order_day,
        coalesce(
            lead(activity_date) over (partition by customer_id order by activity_date),
            cast('9999-12-31' as date)
        ) as next_activity_date,
        cast(sum(view_count) {{ running_window }} as bigint) as views_to_date,
        cast(sum(product_view_count) {{ running_window }} as bigint) as product_views_to_date,
        cast(sum(session_count) {{ running_window }} as bigint) as sessions_to_date,
        max(case when view_count > 0 then activity_date end) {{ running_window }}
            as last_view_date
    from days

)

select
    customer_id,
    activity_date,
    next_activity_date,
    views_to_date,
    product_views_to_date,
    sessions_to_date,
    last_view_date,
    -- running totals only grow, so the max over order days is the value on the last one
    coalesce(max(case when is_order_day then views_to_date end) {{ running_window }}, 0)
        as views_to_last_order_date
from accumulated
