{%- set columns = clv_source_columns(
    source('raw', 'returns'),
    required=['return_id', 'customer_id', 'returned_at', 'refund_amount'],
    optional=['order_id', 'item_count'],
    timestamps=['returned_at'],
    amounts=['refund_amount'],
) -%}
-- Typed raw returns with the reason a row cannot be trusted (null when it can) and its copy
-- number among rows sharing a return_id. Which copy wins: the earliest returned_at, then the
-- larger refund_amount. Kept returns are then matched to clean orders: a return naming an
-- order that does not exist (or was quarantined) is quarantined, so is a return naming another
-- customer's order (its refund would be booked against the wrong customer), and so is the return
-- that takes an order's refunds (in time order) above its total. A return without order_id is
-- kept unmatched.
with

source as (

    select * from {{ source('raw', 'returns') }}

),

known_customers as (

    -- every customer the customers table names, whether or not its attributes are trusted: a
    -- customer row quarantined for its signup_at leaves its returns those of a known customer
    select distinct customer_id from {{ ref('base_raw__customers') }}
    where customer_id is not null

),

customers_given as (

    select count(*) > 0 and {{ var('require_known_customers') }} as check_customers
    from known_customers

),

typed as (

    select
        {{ clv_clean_id(clv_column(columns, 'return_id')) }} as return_id,
        {{ clv_clean_id(clv_column(columns, 'customer_id')) }} as customer_id,
        {{ clv_clean_id(clv_column(columns, 'order_id')) }} as order_id,
        {{ clv_utc_timestamp(clv_column(columns, 'returned_at')) }} as returned_at,
        {{ dbt.safe_cast(clv_column(columns, 'refund_amount'), clv_type_double()) }}
            as refund_amount,
        {{ clv_unparsed_as_text(clv_column(columns, 'returned_at'),
                                clv_utc_timestamp(clv_column(columns, 'returned_at'))) }}
            as returned_at_raw,
        {{ clv_unparsed_as_text(clv_column(columns, 'refund_amount'), dbt.safe_cast(
            clv_column(columns, 'refund_amount'), clv_type_double())) }} as refund_amount_raw
    from source

),

checked as (

    select
        typed.*,
        case
            when typed.return_id is null then 'missing return_id'
            when typed.customer_id is null then 'missing customer_id'
            when typed.returned_at is null then 'missing or unparseable returned_at'
            when typed.refund_amount is null then 'missing or non-numeric refund_amount'
            when not {{ clv_is_finite('typed.refund_amount') }} then 'non-finite refund_amount'
            when typed.refund_amount < 0 then 'negative refund_amount'
            when typed.refund_amount > {{ var('max_amount') }}
                then 'refund_amount above max_amount'
            when typed.returned_at > {{ dbt.current_timestamp() }} then 'returned_at in the future'
            when typed.returned_at < {{ clv_data_start() }} then 'returned_at before data_start'
            when customers_given.check_customers and known_customers.customer_id is null
                then 'unknown customer_id'
        end as row_reason
    from typed
    cross join customers_given
    left join known_customers
        on typed.customer_id = known_customers.customer_id

),

numbered as (

    select
        *,
        row_number() over (
            partition by return_id, row_reason is null
            order by returned_at, refund_amount desc, customer_id
        ) as copy_number
    from checked

),

orders as (

    select order_id, customer_id, order_total from {{ ref('stg_raw__orders') }}

),

matched as (

    -- Kept returns against their order: refunds so far on the same order (in time order).
    select
        numbered.*,
        orders.order_id as matched_order_id,
        orders.customer_id as matched_customer_id,
        orders.order_total as matched_order_total,
        -- refunds of the order's own customer only: another customer's return is quarantined
        -- for that and does not count against the order
        sum(case when orders.customer_id = numbered.customer_id then numbered.refund_amount end)
        over (
            partition by numbered.order_id
            order by numbered.returned_at, numbered.return_id
            rows between unbounded preceding and current row
        ) as refunded_so_far
    from numbered
    left join orders
        on numbered.order_id = orders.order_id
    where numbered.row_reason is null
        and numbered.copy_number = 1

)

select
    numbered.*,
    coalesce(
        numbered.row_reason,
        case
            when numbered.copy_number > 1 then null
            when numbered.order_id is not null and matched.matched_order_id is null
                then 'unknown order_id'
            when matched.matched_customer_id <> numbered.customer_id
                then 'order_id of another customer'
            when matched.refunded_so_far > matched.matched_order_total + 0.005
                then 'refund exceeds its order'
        end
    ) as quarantine_reason
from numbered
-- an equi-join only (conditions on numbered here would force a nested-loop join); duplicates
-- and rows with a row_reason meet the kept row's match but never use it (see the case above)
left join matched
    on numbered.return_id = matched.return_id
