-- Every raw row that did not make it into a clean staging model, with the reason. Repeated ids
-- are here too, with the reason 'duplicate ...', so raw = clean + quarantined for every table.
with

orders as (

    select
        'orders' as source_table,
        order_id as record_id,
        customer_id,
        coalesce(ordered_at_raw, {{ clv_as_text('ordered_at') }}) as event_at_raw,
        coalesce(order_total_raw, {{ clv_as_text('order_total') }}) as amount_raw,
        coalesce(quarantine_reason, 'duplicate order_id') as reason
    from {{ ref('base_raw__orders') }}
    where quarantine_reason is not null or copy_number > 1

),

returns as (

    select
        'returns' as source_table,
        return_id as record_id,
        customer_id,
        coalesce(returned_at_raw, {{ clv_as_text('returned_at') }}) as event_at_raw,
        coalesce(refund_amount_raw, {{ clv_as_text('refund_amount') }}) as amount_raw,
        coalesce(quarantine_reason, 'duplicate return_id') as reason
    from {{ ref('base_raw__returns') }}
    where quarantine_reason is not null or copy_number > 1

),

page_views as (

    select
        'page_views' as source_table,
        session_id as record_id,
        customer_id,
        coalesce(viewed_at_raw, {{ clv_as_text('viewed_at') }}) as event_at_raw,
        cast(null as {{ dbt.type_string() }}) as amount_raw,
        quarantine_reason as reason
    from {{ ref('base_raw__page_views') }}
    where quarantine_reason is not null

),

customers as (

    select
        'customers' as source_table,
        customer_id as record_id,
        customer_id,
        coalesce(signup_at_raw, {{ clv_as_text('signup_at') }}) as event_at_raw,
        cast(null as {{ dbt.type_string() }}) as amount_raw,
        coalesce(quarantine_reason, 'duplicate customer_id') as reason
    from {{ ref('base_raw__customers') }}
    where quarantine_reason is not null or copy_number > 1

)

select * from orders
union all
select * from returns
union all
select * from page_views
union all
select * from customers
