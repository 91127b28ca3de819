{{ config(materialized='external', format='parquet') }}
-- CLV labels per customer at each as-of date t whose horizon is fully observed: net revenue
-- (orders minus refunds in [t, t + horizon), floored at 0) and purchase days in the horizon.
-- The population is the customers with a feature row at t (first order before t); differences
-- of running totals are rounded to 1e-6 to drop float noise.
with

as_of_dates as (

    select * from {{ ref('int_as_of_dates') }} where is_label_complete

),

states as (

    select * from {{ ref('int_customer_states_snapshotted') }}

),

at_start as (

    select
        population.*,
        as_of_dates.label_end_date,
        as_of_dates.horizon_days
    from {{ ref('int_customers_at_as_of_dates') }} as population
    inner join as_of_dates
        on population.as_of_date = as_of_dates.as_of_date

),

windowed as (

    select
        at_start.customer_id,
        at_start.cutoff_date as as_of_date,
        at_start.horizon_days,
        round(at_end.gross_revenue_to_date - at_start.gross_revenue_to_date, 6) as gross_revenue,
        round(at_end.refund_amount_to_date - at_start.refund_amount_to_date, 6) as refund_amount,
        at_end.order_days_to_date - at_start.order_days_to_date as purchase_days
    from at_start
    inner join states as at_end
        on at_start.customer_id = at_end.customer_id
        and at_start.label_end_date = at_end.cutoff_date

)

select
    customer_id,
    as_of_date,
    cast(as_of_date as timestamp) as event_timestamp,
    cast(horizon_days as integer) as horizon_days,
    cast(gross_revenue as {{ clv_type_double() }}) as label_gross_revenue,
    cast(refund_amount as {{ clv_type_double() }}) as label_refund_amount,
    cast(
        case when gross_revenue - refund_amount > 0 then gross_revenue - refund_amount else 0 end
        as {{ clv_type_double() }}
    ) as label_net_revenue,
    cast(purchase_days as integer) as label_purchase_days
from windowed
