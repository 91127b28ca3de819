-- Running totals per customer after each activity day, with the next activity day. A customer's
-- state just before a cutoff t is the row with activity_date < t <= next_activity_date, so any
-- window [a, b) is the difference of the states at b and at a.
with

days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

first_orders as (

    select
        customer_id,
        min(activity_date) as first_order_date
    from days
    where order_count > 0
    group by customer_id

),

first_order_days as (

    select
        days.customer_id,
        first_orders.first_order_date,
        days.gross_revenue as first_order_day_revenue
    from days
    inner join first_orders
        on days.customer_id = first_orders.customer_id
        and days.activity_date = first_orders.first_order_date

),

accumulated as (

    select
        customer_id,
        activity_date,
        coalesce(
            lead(activity_date) over (partition by customer_id order by activity_date),
            cast('9999-12-31' as date)
        ) as next_activity_date,
        cast(sum(order_count) over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ) as bigint) as orders_to_date,
        cast(sum(case when order_count > 0 then 1 else 0 end) over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ) as bigint) as order_days_to_date,
        sum(gross_revenue) over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ) as gross_revenue_to_date,
        cast(sum(return_count) over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ) as bigint) as returns_to_date,
        sum(refund_amount) over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ) as refund_amount_to_date,
        max(case when order_count > 0 then activity_date end) over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        ) as last_order_date
    from days

)

select
    accumulated.*,
    first_order_days.first_order_date,
    first_order_days.first_order_day_revenue
from accumulated
left join first_order_days
    on accumulated.customer_id = first_order_days.customer_id
