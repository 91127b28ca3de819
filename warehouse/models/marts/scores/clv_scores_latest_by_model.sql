-- Each customer's newest score per model: the row of the latest as-of date, and of the latest
-- scoring run on that date, for every model (champion or not). A view, so it follows
-- clv_scores as `clv score` writes.
{{ config(materialized='view') }}

with

scores as (

    select * from {{ ref('stg_clv__scores') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id, model_name
            order by as_of_date desc, scored_at desc
        ) as newest_first

    from scores

)

select * exclude (newest_first)
from ranked
where newest_first = 1
