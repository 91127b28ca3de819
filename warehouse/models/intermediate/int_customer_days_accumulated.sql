-- Running totals per customer after each activity day, with the next activity day. A customer's
-- state just before a cutoff t is the row with activity_date < t <= next_activity_date, so any
-- window [a, b) is the difference of the states at b and at a.
{%- set running_sums = {
    'orders_to_date': 'order_count',
    'order_days_to_date': 'case when order_count > 0 then 1 else 0 end',
    'returns_to_date': 'return_count',
    'matched_returns_to_date': 'matched_return_count',
    'matched_return_days_to_date': 'matched_return_days',
    'purchase_gap_days_to_date': 'coalesce(purchase_gap_days, 0)',
    'purchase_gap_days_sq_to_date': 'coalesce(purchase_gap_days * purchase_gap_days, 0)',
} %}
{%- set running_amounts = {
    'gross_revenue_to_date': 'gross_revenue',
    'refund_amount_to_date': 'refund_amount',
} %}
{%- set running_window -%}
    over (
            partition by customer_id order by activity_date
            rows between unbounded preceding and current row
        )
{%- endset %}
with

days as (

    select * from {{ ref('int_customer_days_aggregated') }}

),

first_order_days as (

    select
        customer_id,
        activity_date as first_order_date,
        gross_revenue as first_order_day_revenue
    from days
    where order_count > 0
        and purchase_gap_days is null

),

accumulated as (

    select
        customer_id,
        activity_date,
        coalesce(
            lead(activity_date) over (partition by customer_id order by activity_date),
            cast('9999-12-31' as date)
        ) as next_activity_date,
        {%- for name, expr in running_sums.items() %}
        cast(sum({{ expr }}) {{ running_window }} as bigint) as {{ name }},
        {%- endfor %}
        {%- for name, expr in running_amounts.items() %}
        sum({{ expr }}) {{ running_window }} as {{ name }},
        {%- endfor %}
        max(case when order_count > 0 then activity_date end) {{ running_window }}
            as last_order_date
    from days

)

select
    accumulated.*,
    first_order_days.first_order_date,
    first_order_days.first_order_day_revenue
from accumulated
left join first_order_days
    on accumulated.customer_id = first_order_days.customer_id
