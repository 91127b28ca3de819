-- Each customer's running totals just before every cutoff the marts need: the as-of dates t
-- (features) and the horizon ends t + horizon (labels). Only events strictly before the cutoff
-- count, so nothing at or after t leaks into the state at t.
with

as_of_dates as (

    select * from {{ ref('int_as_of_dates') }}

),

cutoffs as (

    select as_of_date as cutoff_date from as_of_dates
    union
    select label_end_date as cutoff_date from as_of_dates where is_label_complete

),

accumulated as (

    select * from {{ ref('int_customer_days_accumulated') }}

)

select
    cutoffs.cutoff_date,
    accumulated.customer_id,
    accumulated.activity_date as last_activity_date,
    accumulated.orders_to_date,
    accumulated.order_days_to_date,
    accumulated.returns_to_date,
    accumulated.matched_returns_to_date,
    accumulated.matched_return_days_to_date,
    accumulated.purchase_gap_days_to_date,
    accumulated.purchase_gap_days_sq_to_date,
    accumulated.gross_revenue_to_date,
    accumulated.refund_amount_to_date,
    accumulated.last_order_date,
    accumulated.first_order_date,
    accumulated.first_order_day_revenue
from cutoffs
inner join accumulated
    on accumulated.activity_date < cutoffs.cutoff_date
    and accumulated.next_activity_date >= cutoffs.cutoff_date
