-- The feature population: each customer at each as-of date t after their first order, with
-- their running totals just before t. Every feature mart and the labels start from these rows.
with

as_of_dates as (

    select as_of_date from {{ ref('int_as_of_dates') }}

),

states as (

    select * from {{ ref('int_customer_states_snapshotted') }}

)

select
    states.*,
    states.cutoff_date as as_of_date
from states
inner join as_of_dates
    on states.cutoff_date = as_of_dates.as_of_date
where states.first_order_date < states.cutoff_date
