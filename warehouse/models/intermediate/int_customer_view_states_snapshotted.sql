-- Each customer's running page-view totals just before every as-of date t (the row of
-- int_customer_view_days_accumulated with activity_date < t <= next_activity_date). Customers
-- without a view or an order before t have no row (the engagement mart fills 0).
with

as_of_dates as (

    select as_of_date from {{ ref('int_as_of_dates') }}

),

accumulated as (

    select * from {{ ref('int_customer_view_days_accumulated') }}

)

select
    as_of_dates.as_of_date,
    accumulated.customer_id,
    accumulated.views_to_date,
    accumulated.product_views_to_date,
    accumulated.sessions_to_date,
    accumulated.last_view_date,
    accumulated.views_to_last_order_date
from as_of_dates
inner join accumulated
    on accumulated.activity_date < as_of_dates.as_of_date
    and accumulated.next_activity_date >= as_of_dates.as_of_date
