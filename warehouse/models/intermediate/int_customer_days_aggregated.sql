-- One row per customer and UTC day with an order or a return: the day's orders, gross revenue,
-- returns and refunds, plus the gap since the previous purchase day and the order-to-return
-- days of returns matched to an order. Every cutoff in the project is a date, so day totals are
-- exact. Page views are aggregated on their own (int_customer_views_aggregated), so RFM, returns
-- and labels never wait for the largest input.
with

orders as (

    select
        customer_id,
        order_date as activity_date,
        count(*) as order_count,
        {{ clv_exact_sum('order_total') }} as gross_revenue
    from {{ ref('stg_raw__orders') }}
    group by customer_id, order_date

),

returns as (

    select
        returns.customer_id,
        returns.return_date as activity_date,
        count(*) as return_count,
        {{ clv_exact_sum('returns.refund_amount') }} as refund_amount,
        count(orders.order_id) as matched_return_count,
        sum({{ dbt.datediff('orders.order_date', 'returns.return_date', 'day') }})
            as matched_return_days
    from {{ ref('stg_raw__returns') }} as returns
    left join {{ ref('stg_raw__orders') }} as orders
        on returns.order_id = orders.order_id
    group by returns.customer_id, returns.return_date

),

customer_days as (

    select customer_id, activity_date from orders
    union
    select customer_id, activity_date from returns

),

joined as (

    select
        customer_days.customer_id,
        customer_days.activity_date,
        coalesce(orders.order_count, 0) as order_count,
        coalesce(orders.gross_revenue, 0) as gross_revenue,
        coalesce(returns.return_count, 0) as return_count,
        coalesce(returns.refund_amount, 0) as refund_amount,
        coalesce(returns.matched_return_count, 0) as matched_return_count,
        coalesce(returns.matched_return_days, 0) as matched_return_days
    from customer_days
    left join orders
        on customer_days.customer_id = orders.customer_id
        and customer_days.activity_date = orders.activity_date
    left join returns
        on customer_days.customer_id = returns.customer_id
        and customer_days.activity_date = returns.activity_date

),

purchase_gaps as (

    select
        customer_id,
        activity_date,
        {{ dbt.datediff(
            'lag(activity_date) over (partition by customer_id order by activity_date)',
            'activity_date', 'day') }} as purchase_gap_days
    from joined
    where order_count > 0

)

select
    joined.*,
    purchase_gaps.purchase_gap_days
from joined
left join purchase_gaps
    on joined.customer_id = purchase_gaps.customer_id
    and joined.activity_date = purchase_gaps.activity_date
