{{ config(materialized='external', format='parquet') }}
-- Profile attributes per customer at each as-of date t (null when the customers table is not
-- given or lacks the customer); days_since_signup counts only a sign-up before t.
with

population as (

    select customer_id, as_of_date from {{ ref('int_customers_at_as_of_dates') }}

),

customers as (

    select * from {{ ref('stg_raw__customers') }}

)

select
    population.customer_id,
    population.as_of_date,
    cast(population.as_of_date as timestamp) as event_timestamp,
    customers.country,
    customers.acquisition_channel,
    cast(
        case when customers.signup_at < population.as_of_date
            then {{ dbt.datediff('cast(customers.signup_at as date)', 'population.as_of_date',
                                 'day') }}
        end as integer
    ) as days_since_signup
from population
left join customers
    on population.customer_id = customers.customer_id
