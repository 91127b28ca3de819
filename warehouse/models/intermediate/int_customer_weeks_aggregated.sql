{{ config(materialized='clv_insert_by_as_of_date') }}
-- The last 52 weeks before each as-of date t as two sequences for sequence models: net revenue
-- and page views per week, week 0 = [t - 7, t), week i = [t - 7(i + 1), t - 7i). Activity days
-- are paired with the as-of dates they precede by at most 364 days, summed per week (sparse),
-- then spread into dense arrays by clv_dense_array_agg (a dispatched macro: the portable form is
-- one conditional sum per week; DuckDB's list functions do it several times faster). A
-- customer without activity in the 52 weeks has no row (the mart fills zeros). Built a few
-- as-of dates at a time (materialization clv_insert_by_as_of_date) to bound memory.
{%- set n_weeks = 52 %}
with

as_of_dates as (

    select as_of_date from {{ ref('int_as_of_dates') }}
    where {{ clv_as_of_batch('as_of_date') }}

),

activity_days as (

    select * from {{ ref('int_customer_activity_days_joined') }}

),

weeks_before_as_of as (

    select
        activity_days.customer_id,
        as_of_dates.as_of_date,
        cast(floor(({{ dbt.datediff('activity_days.activity_date', 'as_of_dates.as_of_date',
                                    'day') }} - 1) / 7.0) as integer) as week_index,
        activity_days.gross_revenue - activity_days.refund_amount as net_revenue,
        activity_days.view_count
    from activity_days
    inner join as_of_dates
        on activity_days.activity_date < as_of_dates.as_of_date
        and activity_days.activity_date >= cast(
            {{ dbt.dateadd('day', -7 * n_weeks, 'as_of_dates.as_of_date') }} as date)

),

weeks as (

    select
        customer_id,
        as_of_date,
        week_index,
        {{ clv_exact_sum('net_revenue') }} as net_revenue,
        sum(view_count) as view_count
    from weeks_before_as_of
    group by customer_id, as_of_date, week_index

)

select
    customer_id,
    as_of_date,
    {{ clv_dense_array_agg('week_index', 'net_revenue', n_weeks) }} as weekly_net_revenue_52w,
    {{ clv_dense_array_agg('week_index', 'view_count', n_weeks) }} as weekly_views_52w
from weeks
group by customer_id, as_of_date
