-- The scores written back by `clv score`: one row per (customer_id, as_of_date, model_name,
-- model_version), every as-of date and model version scored so far. A view, so the models
-- built on it read the scores as they are when they run. Rows scored before clv_scores had
-- is_champion count as not the champion.
with

source as (

    select * from {{ source('clv', 'clv_scores') }}

)

select
    customer_id,
    as_of_date,
    horizon_days,
    model_name,
    model_version,
    coalesce(is_champion, false) as is_champion,
    predicted_clv,
    p_purchase,
    clv_p10,
    clv_p50,
    clv_p90,
    clv_decile,
    segment,
    top_drivers,
    scored_at,
    run_id
from source
