{%- set columns = clv_source_columns(
    source('raw', 'returns'),
    required=['return_id', 'customer_id', 'returned_at', 'refund_amount'],
) -%}
-- Typed raw returns with the reason a row cannot be trusted (null when it can) and its copy
-- number among rows sharing a return_id. Which copy wins: the earliest returned_at, then the
-- larger refund_amount.
with

source as (

    select * from {{ source('raw', 'returns') }}

),

typed as (

    select
        {{ clv_clean_id(clv_column(columns, 'return_id')) }} as return_id,
        {{ clv_clean_id(clv_column(columns, 'customer_id')) }} as customer_id,
        {{ clv_clean_id(clv_column(columns, 'order_id')) }} as order_id,
        {{ clv_utc_timestamp(clv_column(columns, 'returned_at')) }} as returned_at,
        {{ dbt.safe_cast(clv_column(columns, 'refund_amount'), clv_type_double()) }}
            as refund_amount,
        {{ clv_as_text(clv_column(columns, 'returned_at')) }} as returned_at_raw,
        {{ clv_as_text(clv_column(columns, 'refund_amount')) }} as refund_amount_raw
    from source

),

checked as (

    select
        *,
        case
            when return_id is null then 'missing return_id'
            when customer_id is null then 'missing customer_id'
            when returned_at is null then 'missing or unparseable returned_at'
            when refund_amount is null then 'missing or non-numeric refund_amount'
            when refund_amount <> refund_amount or refund_amount > 1e12
                then 'non-finite refund_amount'
            when refund_amount < 0 then 'negative refund_amount'
            when returned_at > {{ dbt.current_timestamp() }} then 'returned_at in the future'
        end as quarantine_reason
    from typed

)

select
    *,
    row_number() over (
        partition by return_id, quarantine_reason is null
        order by returned_at, refund_amount desc, customer_id
    ) as copy_number
from checked
