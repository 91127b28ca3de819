{%- set columns = clv_source_columns(
    source('raw', 'orders'),
    required=['order_id', 'customer_id', 'ordered_at', 'order_total'],
    optional=['currency', 'item_count', 'channel'],
    timestamps=['ordered_at'],
    amounts=['order_total'],
    require_rows=true,
) -%}
-- Typed raw orders with the reason a row cannot be trusted (null when it can) and its copy
-- number among rows sharing an order_id. Which copy wins: the earliest ordered_at, then the
-- larger order_total, then the smaller customer_id. When a customers table is given (and the
-- var require_known_customers is true), orders of customers missing from it are quarantined.
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
        {{ clv_unparsed_as_text(clv_column(columns, 'ordered_at'),
                                clv_utc_timestamp(clv_column(columns, 'ordered_at'))) }}
            as ordered_at_raw,
        {{ clv_unparsed_as_text(clv_column(columns, 'order_total'), dbt.safe_cast(
            clv_column(columns, 'order_total'), clv_type_double())) }} as order_total_raw
    from source

),

known_customers as (

    -- every customer the customers table names, whether or not its attributes are trusted: a
    -- customer row quarantined for its signup_at leaves its orders those of a known customer
    select distinct customer_id from {{ ref('base_raw__customers') }}
    where customer_id is not null

),

customers_given as (

    select count(*) > 0 and {{ var('require_known_customers') }} as check_customers
    from known_customers

),

checked as (

    select
        typed.*,
        case
            when typed.order_id is null then 'missing order_id'
            when typed.customer_id is null then 'missing customer_id'
            when typed.ordered_at is null then 'missing or unparseable ordered_at'
            when typed.order_total is null then 'missing or non-numeric order_total'
            when not {{ clv_is_finite('typed.order_total') }} then 'non-finite order_total'
            when typed.order_total < 0 then 'negative order_total'
            when typed.order_total > {{ var('max_amount') }} then 'order_total above max_amount'
            when typed.ordered_at > {{ dbt.current_timestamp() }} then 'ordered_at in the future'
            when typed.ordered_at < {{ clv_data_start() }} then 'ordered_at before data_start'
            when customers_given.check_customers and known_customers.customer_id is null
                then 'unknown customer_id'
        end as quarantine_reason
    from typed
    cross join customers_given
    left join known_customers
        on typed.customer_id = known_customers.customer_id

)

select
    *,
    row_number() over (
        partition by order_id, quarantine_reason is null
        order by ordered_at, order_total desc, customer_id
    ) as copy_number
from checked
