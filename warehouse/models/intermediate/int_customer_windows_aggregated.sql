{{ config(materialized='clv_insert_by_as_of_date') }}
-- Activity in trailing windows before each as-of date t: for w in 7, 30, 90, 180 and 365 days,
-- totals of the days in [t - w, t), and the previous 90-day window [t - 180, t - 90). Each
-- activity day is paired with the as-of dates it precedes by at most 365 days (about 12
-- monthly dates), and only the few measures the windows need travel with it. A customer
-- without activity in the 365 days before t has no row here (the marts fill 0). Built a few
-- as-of dates at a time (materialization clv_insert_by_as_of_date) to bound memory.
{%- set windows = var('trailing_windows') %}
{%- set measures = {
    'orders': 'order_count', 'gross_revenue': 'gross_revenue', 'refunds': 'refund_amount',
    'views': 'view_count', 'sessions': 'session_count',
} %}
{%- set counts = ['orders', 'views', 'sessions'] %}
with

as_of_dates as (

    select as_of_date from {{ ref('int_as_of_dates') }}
    where {{ clv_as_of_batch('as_of_date') }}

),

activity_days as (

    select * from {{ ref('int_customer_activity_days_joined') }}

),

days_before_as_of as (

    select
        activity_days.*,
        as_of_dates.as_of_date,
        {{ dbt.datediff('activity_days.activity_date', 'as_of_dates.as_of_date', 'day') }}
            as days_before
    from activity_days
    inner join as_of_dates
        on activity_days.activity_date < as_of_dates.as_of_date
        and activity_days.activity_date >= cast(
            {{ dbt.dateadd('day', -365, 'as_of_dates.as_of_date') }} as date)

)

select
    customer_id,
    as_of_date,
    {%- for w in windows %}
    {%- for name, expr in measures.items() %}
    {%- set windowed = 'case when days_before <= ' ~ w ~ ' then ' ~ expr ~ ' else 0 end' %}
    {%- if name in counts %}
    cast(sum({{ windowed }}) as bigint) as {{ name }}_{{ w }}d,
    {%- else %}
    {{ clv_exact_sum(windowed) }} as {{ name }}_{{ w }}d,
    {%- endif %}
    {%- endfor %}
    {%- endfor %}
    cast(sum(case when days_before > 90 and days_before <= 180 then order_count else 0 end)
        as bigint) as orders_prev_90d,
    {{ clv_exact_sum('case when days_before > 90 and days_before <= 180
        then gross_revenue - refund_amount else 0 end') }} as net_revenue_prev_90d
from days_before_as_of
group by customer_id, as_of_date
