-- Shop-level calendar inputs per as-of date t, the same for every customer at t: where the
-- horizon [t, t + horizon) falls in the year (its midpoint as an angle), and the shop's own
-- seasonality: its order revenue in the same calendar window a year earlier,
-- [t - 365, t - 365 + horizon), over the window just before that, [t - 365 - horizon, t - 365).
-- Both windows end before t. The ratio is null when the history does not reach back one year
-- and one horizon (the pattern was not observable) or the earlier window had no revenue.
with

as_of_dates as (

    select as_of_date from {{ ref('int_as_of_dates') }}

),

orders as (

    select order_date, order_total from {{ ref('stg_raw__orders') }}

),

daily_revenue as (

    select
        order_date,
        {{ clv_exact_sum('order_total') }} as revenue
    from orders
    group by order_date

),

history as (

    select min(order_date) as first_order_date from orders

),

windows as (

    select
        as_of_date,
        cast({{ dbt.dateadd('day', '-365 - ' ~ var('horizon_days'), 'as_of_date') }} as date)
            as earlier_window_start,
        cast({{ dbt.dateadd('day', -365, 'as_of_date') }} as date) as same_window_start,
        cast({{ dbt.dateadd('day', var('horizon_days') ~ ' - 365', 'as_of_date') }} as date)
            as same_window_end,
        cast({{ dbt.dateadd('day', (var('horizon_days') / 2) | int, 'as_of_date') }} as date)
            as horizon_midpoint
    from as_of_dates

),

revenue_by_window as (

    select
        windows.as_of_date,
        windows.earlier_window_start,
        windows.horizon_midpoint,
        {{ clv_exact_sum('case when daily_revenue.order_date >= windows.same_window_start'
                         ~ ' then daily_revenue.revenue else 0 end') }} as same_window_revenue,
        {{ clv_exact_sum('case when daily_revenue.order_date < windows.same_window_start'
                         ~ ' then daily_revenue.revenue else 0 end') }}
            as earlier_window_revenue
    from windows
    left join daily_revenue
        on daily_revenue.order_date >= windows.earlier_window_start
        and daily_revenue.order_date < windows.same_window_end
        and daily_revenue.order_date < windows.as_of_date
    group by windows.as_of_date, windows.earlier_window_start, windows.horizon_midpoint

)

select
    revenue_by_window.as_of_date,
    cast(sin(2 * pi() * {{ clv_day_of_year('revenue_by_window.horizon_midpoint') }}
             / 365.25) as {{ clv_type_double() }}) as horizon_season_sin,
    cast(cos(2 * pi() * {{ clv_day_of_year('revenue_by_window.horizon_midpoint') }}
             / 365.25) as {{ clv_type_double() }}) as horizon_season_cos,
    cast(
        case
            when history.first_order_date <= revenue_by_window.earlier_window_start
                and revenue_by_window.earlier_window_revenue > 0
                then revenue_by_window.same_window_revenue
                    / revenue_by_window.earlier_window_revenue
        end as {{ clv_type_double() }}
    ) as shop_seasonal_ratio
from revenue_by_window
cross join history
