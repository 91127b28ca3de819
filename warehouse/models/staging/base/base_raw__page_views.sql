{%- set columns = clv_source_columns(
    source('raw', 'page_views'),
    required=['customer_id', 'viewed_at'],
    optional=['session_id', 'page_type', 'product_id', 'category'],
    timestamps=['viewed_at'],
) -%}
-- Typed raw page views with the reason a row cannot be trusted (null when it can). An empty
-- customer_id is an anonymous visitor, not an error.
with

source as (

    select * from {{ source('raw', 'page_views') }}

),

typed as (

    select
        {{ clv_clean_id(clv_column(columns, 'customer_id')) }} as customer_id,
        {{ clv_utc_timestamp(clv_column(columns, 'viewed_at')) }} as viewed_at,
        {{ clv_clean_id(clv_column(columns, 'session_id')) }} as session_id,
        lower({{ clv_clean_id(clv_column(columns, 'page_type')) }}) as page_type,
        {{ clv_clean_id(clv_column(columns, 'product_id')) }} as product_id,
        {{ clv_clean_id(clv_column(columns, 'category')) }} as category,
        {{ clv_unparsed_as_text(clv_column(columns, 'viewed_at'),
                                clv_utc_timestamp(clv_column(columns, 'viewed_at'))) }}
            as viewed_at_raw
    from source

)

select
    *,
    case
        when viewed_at is null then 'missing or unparseable viewed_at'
        when viewed_at > {{ dbt.current_timestamp() }} then 'viewed_at in the future'
        when viewed_at < {{ clv_data_start() }} then 'viewed_at before data_start'
    end as quarantine_reason
from typed
