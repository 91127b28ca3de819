-- Clean orders: one row per order_id, UTC timestamps, typed amounts.
with

orders as (

    select * from {{ ref('base_raw__orders') }}

)

select
    order_id,
    customer_id,
    ordered_at,
    cast(ordered_at as date) as order_date,
    order_total
from orders
where quarantine_reason is null
    and copy_number = 1
