-- Each customer's newest champion score: of the scored sets flagged is_champion, the row of
-- the latest as-of date and of the latest scoring run on that date. What BI and apps read by
-- default; clv_scores_latest_by_model has every model. A view, so it follows clv_scores as
-- `clv score` writes.
{{ config(materialized='view') }}

with

scores as (

    select * from {{ ref('stg_clv__scores') }}

),

champion_scores as (

    select * from scores
    where is_champion

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by as_of_date desc, scored_at desc
        ) as newest_first

    from champion_scores

)

select * exclude (newest_first)
from ranked
where newest_first = 1
