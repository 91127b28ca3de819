-- Clean customer attributes: one row per customer_id.
with

customers as (

    select * from {{ ref('base_raw__customers') }}

)

select
    customer_id,
    signup_at,
    country,
    acquisition_channel
from customers
where quarantine_reason is null
    and copy_number = 1
