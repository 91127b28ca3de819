-- One row per customer and UTC day with any order or return: the day's order count, gross
-- revenue, returns and refunds. Every cutoff in the project is a date, so day totals are exact.
with

orders as (

    select
        customer_id,
        order_date as activity_date,
        count(*) as order_count,
        sum(order_total) as gross_revenue
    from {{ ref('stg_raw__orders') }}
    group by customer_id, order_date

),

refunds as (

    select
        customer_id,
        return_date as activity_date,
        count(*) as return_count,
        sum(refund_amount) as refund_amount
    from {{ ref('stg_raw__returns') }}
    group by customer_id, return_date

)

select
    coalesce(orders.customer_id, refunds.customer_id) as customer_id,
    coalesce(orders.activity_date, refunds.activity_date) as activity_date,
    coalesce(orders.order_count, 0) as order_count,
    coalesce(orders.gross_revenue, 0) as gross_revenue,
    coalesce(refunds.return_count, 0) as return_count,
    coalesce(refunds.refund_amount, 0) as refund_amount
from orders
full outer join refunds
    on orders.customer_id = refunds.customer_id
    and orders.activity_date = refunds.activity_date
