-- Clean page views in UTC; customer_id is null for anonymous visitors.
with

page_views as (

    select * from {{ ref('base_raw__page_views') }}

)

select
    customer_id,
    viewed_at,
    cast(viewed_at as date) as view_date,
    session_id,
    page_type,
    product_id,
    category
from page_views
where quarantine_reason is null
