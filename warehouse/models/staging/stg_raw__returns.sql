-- Clean returns: one row per return_id, UTC timestamps, typed amounts.
with

returns as (

    select * from {{ ref('base_raw__returns') }}

)

select
    return_id,
    customer_id,
    order_id,
    returned_at,
    cast(returned_at as date) as return_date,
    refund_amount
from returns
where quarantine_reason is null
    and copy_number = 1
