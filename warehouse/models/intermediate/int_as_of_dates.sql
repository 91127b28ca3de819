-- The as-of schedule: cutoffs t = as_of_start + k * as_of_every as_of_unit, up to the day after
-- the last event (so the last cutoff sees everything). A cutoff's labels are complete when the
-- last day of its window [t, t + horizon) is on or before the last event date, i.e.
-- t + horizon <= last event date + 1 day; only those are used for training.
with

last_events as (

    select max(order_date) as last_date from {{ ref('stg_raw__orders') }}
    union all
    select max(return_date) as last_date from {{ ref('stg_raw__returns') }}

),

bounds as (

    select max(last_date) as last_event_date from last_events

),

steps as (

    {{ dbt.generate_series(5000) }}

),

spine as (

    select
        cast({{ dbt.dateadd(var('as_of_unit'),
                            '(generated_number - 1) * ' ~ var('as_of_every'),
                            "cast('" ~ var('as_of_start') ~ "' as date)") }} as date) as as_of_date
    from steps

)

select
    spine.as_of_date,
    cast({{ dbt.dateadd('day', var('horizon_days'), 'spine.as_of_date') }} as date)
        as label_end_date,
    {{ var('horizon_days') }} as horizon_days,
    bounds.last_event_date,
    cast({{ dbt.dateadd('day', var('horizon_days'), 'spine.as_of_date') }} as date)
        <= cast({{ dbt.dateadd('day', 1, 'bounds.last_event_date') }} as date)
        as is_label_complete
from spine
cross join bounds
where spine.as_of_date <= cast({{ dbt.dateadd('day', 1, 'bounds.last_event_date') }} as date)
{%- if var('as_of_end', none) %}
    and spine.as_of_date <= cast('{{ var("as_of_end") }}' as date)
{%- endif %}
