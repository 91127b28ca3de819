{%- set columns = clv_source_columns(
    source('raw', 'customers'),
    required=['customer_id'],
    optional=['signup_at', 'country', 'acquisition_channel'],
    timestamps=['signup_at'],
) -%}
-- Typed raw customer attributes with the reason a row cannot be trusted and its copy number.
-- Which copy wins among rows sharing a customer_id: the earliest signup_at.
with

source as (

    select * from {{ source('raw', 'customers') }}

),

typed as (

    select
        {{ clv_clean_id(clv_column(columns, 'customer_id')) }} as customer_id,
        {{ clv_utc_timestamp(clv_column(columns, 'signup_at')) }} as signup_at,
        {{ clv_clean_id(clv_column(columns, 'country')) }} as country,
        {{ clv_clean_id(clv_column(columns, 'acquisition_channel')) }} as acquisition_channel,
        {{ clv_unparsed_as_text(clv_column(columns, 'signup_at'),
                                clv_utc_timestamp(clv_column(columns, 'signup_at'))) }}
            as signup_at_raw
    from source

),

checked as (

    select
        *,
        case
            when customer_id is null then 'missing customer_id'
            when signup_at_raw is not null then 'unparseable signup_at'
            when signup_at > {{ dbt.current_timestamp() }} then 'signup_at in the future'
        end as quarantine_reason
    from typed

)

select
    *,
    row_number() over (
        partition by customer_id, quarantine_reason is null
        order by signup_at nulls last, country, acquisition_channel
    ) as copy_number
from checked
