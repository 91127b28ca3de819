-- One row per customer and UTC day with an order, a return or an identified page view: the
-- order-and-return day totals next to the page-view day totals. The windows, the weekly
-- sequences and the page-view running totals start from here (RFM, returns and labels do not
-- need page views and start from int_customer_days_aggregated).
with

order_days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

view_days as (

    select * from {{ ref('int_customer_views_aggregated') }}

)

select
    coalesce(order_days.customer_id, view_days.customer_id) as customer_id,
    coalesce(order_days.activity_date, view_days.view_date) as activity_date,
    coalesce(order_days.order_count, 0) as order_count,
    coalesce(order_days.gross_revenue, 0) as gross_revenue,
    coalesce(order_days.refund_amount, 0) as refund_amount,
    coalesce(view_days.view_count, 0) as view_count,
    coalesce(view_days.product_view_count, 0) as product_view_count,
    coalesce(view_days.session_count, 0) as session_count
from order_days
full outer join view_days
    on order_days.customer_id = view_days.customer_id
    and order_days.activity_date = view_days.view_date
