-- Activity in trailing windows before each as-of date t: for w in 7, 30, 90, 180 and 365 days,
-- totals of the days in [t - w, t); and the last 52 weeks as sequences (week 0 = [t - 7, t)),
-- all in one aggregation. A customer without activity in the 365 days before t has no row
-- here (the marts fill 0).
{%- set windows = [7, 30, 90, 180, 365] %}
{%- set measures = {
    'orders': 'order_count', 'gross_revenue': 'gross_revenue', 'refunds': 'refund_amount',
    'views': 'view_count', 'sessions': 'session_count',
} %}
{%- set weeks = range(52) %}
with

as_of_dates as (

    select as_of_date from {{ ref('int_as_of_dates') }}

),

days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

days_before_as_of as (

    select
        days.*,
        as_of_dates.as_of_date,
        {{ dbt.datediff('days.activity_date', 'as_of_dates.as_of_date', 'day') }} as days_before
    from days
    inner join as_of_dates
        on days.activity_date < as_of_dates.as_of_date
        and days.activity_date >= cast({{ dbt.dateadd('day', -365, 'as_of_dates.as_of_date') }}
            as date)

),

windows as (

    select
        customer_id,
        as_of_date,
        {%- for w in windows %}
        {%- for name, expr in measures.items() %}
        sum(case when days_before <= {{ w }} then {{ expr }} else 0 end) as {{ name }}_{{ w }}d,
        {%- endfor %}
        {%- endfor %}
        sum(case when days_before > 90 and days_before <= 180 then order_count else 0 end)
            as orders_prev_90d,
        sum(case when days_before > 90 and days_before <= 180
            then gross_revenue - refund_amount else 0 end) as net_revenue_prev_90d,
        {%- for i in weeks %}
        sum(case when days_before > {{ 7 * i }} and days_before <= {{ 7 * i + 7 }}
            then gross_revenue - refund_amount else 0 end) as net_revenue_week_{{ i }},
        sum(case when days_before > {{ 7 * i }} and days_before <= {{ 7 * i + 7 }}
            then view_count else 0 end) as views_week_{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
    from days_before_as_of
    group by customer_id, as_of_date

)

select
    customer_id,
    as_of_date,
    {%- for w in windows %}
    {%- for name in measures %}
    {{ name }}_{{ w }}d,
    {%- endfor %}
    {%- endfor %}
    orders_prev_90d,
    net_revenue_prev_90d,
    {%- set net = [] %}{%- set views = [] %}
    {%- for i in weeks %}{% do net.append('net_revenue_week_' ~ i) %}{% do views.append('views_week_' ~ i) %}{% endfor %}
    {{ clv_float_array(net) }} as weekly_net_revenue_52w,
    {{ clv_float_array(views) }} as weekly_views_52w
from windows
