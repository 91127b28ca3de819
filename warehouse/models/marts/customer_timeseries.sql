{{ config(materialized='external', format='parquet') }}
-- Time-series features per customer at each as-of date t, from events strictly before t:
-- trailing-window totals (7/30/90/180/365 days) of orders, gross revenue, refunds, net revenue,
-- views and sessions; 90-day trends; inter-purchase time; tenure; first-order value; and the
-- weekly net-revenue and view sequences of the last 52 weeks for sequence models; and the
-- shop's calendar inputs at t (int_shop_calendar: the season the horizon covers, the shop's
-- own seasonal ratio), the same for every customer at t.
{%- set windows = var('trailing_windows') %}
with

population as (

    select * from {{ ref('int_customers_at_as_of_dates') }}

),

windows as (

    select * from {{ ref('int_customer_windows_aggregated') }}

),

weeks as (

    select * from {{ ref('int_customer_weeks_aggregated') }}

),

calendar as (

    select * from {{ ref('int_shop_calendar') }}

),

customers as (

    select customer_id, cast(signup_at as date) as signup_date
    from {{ ref('stg_raw__customers') }}

)

select
    population.customer_id,
    population.as_of_date,
    cast(population.as_of_date as timestamp) as event_timestamp,
    {%- for w in windows %}
    cast(coalesce(windows.orders_{{ w }}d, 0) as integer) as orders_{{ w }}d,
    cast(coalesce(windows.gross_revenue_{{ w }}d, 0) as {{ clv_type_double() }})
        as gross_revenue_{{ w }}d,
    cast(coalesce(windows.refunds_{{ w }}d, 0) as {{ clv_type_double() }}) as refunds_{{ w }}d,
    cast(coalesce(windows.gross_revenue_{{ w }}d - windows.refunds_{{ w }}d, 0)
        as {{ clv_type_double() }}) as net_revenue_{{ w }}d,
    cast(coalesce(windows.views_{{ w }}d, 0) as integer) as views_{{ w }}d,
    cast(coalesce(windows.sessions_{{ w }}d, 0) as integer) as sessions_{{ w }}d,
    {%- endfor %}
    cast(coalesce(windows.orders_90d, 0) - coalesce(windows.orders_prev_90d, 0) as integer)
        as order_trend_90d,
    cast(coalesce(windows.gross_revenue_90d - windows.refunds_90d, 0)
        - coalesce(windows.net_revenue_prev_90d, 0) as {{ clv_type_double() }})
        as net_revenue_trend_90d,
    cast(
        case when population.order_days_to_date > 1
            then population.purchase_gap_days_to_date * 1.0 / (population.order_days_to_date - 1)
        end as {{ clv_type_double() }}
    ) as inter_purchase_days_mean,
    cast(
        case when population.order_days_to_date > 2 then sqrt(greatest(
            population.purchase_gap_days_sq_to_date * 1.0 / (population.order_days_to_date - 1)
            - power(population.purchase_gap_days_to_date * 1.0
                    / (population.order_days_to_date - 1), 2), 0))
        end as {{ clv_type_double() }}
    ) as inter_purchase_days_std,
    cast({{ dbt.datediff(
        'case when customers.signup_date < population.first_order_date'
        ~ ' then customers.signup_date else population.first_order_date end',
        'population.as_of_date', 'day') }} as integer) as tenure_days,
    cast(population.first_order_day_revenue as {{ clv_type_double() }}) as first_order_value,
    coalesce(weeks.weekly_net_revenue_52w, {{ clv_float_array(['0'] * 52) }})
        as weekly_net_revenue_52w,
    coalesce(weeks.weekly_views_52w, {{ clv_float_array(['0'] * 52) }}) as weekly_views_52w,
    calendar.horizon_season_sin,
    calendar.horizon_season_cos,
    calendar.shop_seasonal_ratio
from population
left join windows
    on population.customer_id = windows.customer_id
    and population.as_of_date = windows.as_of_date
left join weeks
    on population.customer_id = weeks.customer_id
    and population.as_of_date = weeks.as_of_date
left join customers
    on population.customer_id = customers.customer_id
left join calendar
    on population.as_of_date = calendar.as_of_date
