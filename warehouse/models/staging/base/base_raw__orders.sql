{%- set columns = clv_source_columns(
    source('raw', 'orders'),
    required=['order_id', 'customer_id', 'ordered_at', 'order_total'],
) -%}
-- Typed raw orders with the reason a row cannot be trusted (null when it can) and its copy
-- number among rows sharing an order_id. Which copy wins: the earliest ordered_at, then the
-- larger order_total, then the smaller customer_id.
with

source as (

    select * from {{ source('raw', 'orders') }}

),

typed as (

    select
        {{ clv_clean_id(clv_column(columns, 'order_id')) }} as order_id,
        {{ clv_clean_id(clv_column(columns, 'customer_id')) }} as customer_id,
        {{ clv_utc_timestamp(clv_column(columns, 'ordered_at')) }} as ordered_at,
        {{ dbt.safe_cast(clv_column(columns, 'order_total'), clv_type_double()) }}
            as order_total,
        {{ clv_as_text(clv_column(columns, 'ordered_at')) }} as ordered_at_raw,
        {{ clv_as_text(clv_column(columns, 'order_total')) }} as order_total_raw
    from source

),

checked as (

    select
        *,
        case
            when order_id is null then 'missing order_id'
            when customer_id is null then 'missing customer_id'
            when ordered_at is null then 'missing or unparseable ordered_at'
            when order_total is null then 'missing or non-numeric order_total'
            when order_total <> order_total or order_total > 1e12 then 'non-finite order_total'
            when order_total < 0 then 'negative order_total'
            when ordered_at > {{ dbt.current_timestamp() }} then 'ordered_at in the future'
        end as quarantine_reason
    from typed

)

select
    *,
    row_number() over (
        partition by order_id, quarantine_reason is null
        order by ordered_at, order_total desc, customer_id
    ) as copy_number
from checked
