{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'view_date'],
        on_schema_change='fail',
    )
}}
-- Identified page views per customer and UTC day: views, product views and distinct sessions
-- (a session across midnight counts on both days). Page views are the largest input, so this
-- model is incremental: a run re-aggregates only the days from the latest day already built
-- minus var incremental_lookback_days (late views within that lookback are picked up; older
-- backfills need `clv build --full-refresh`).
with

page_views as (

    select
        customer_id,
        view_date,
        coalesce(session_id, {{ clv_as_text('viewed_at') }}) as session_key,
        page_type
    from {{ ref('stg_raw__page_views') }}
    where customer_id is not null
    {% if is_incremental() %}
        and view_date >= (
            select cast({{ dbt.dateadd('day', -var('incremental_lookback_days'),
                                       'max(view_date)') }} as date)
            from {{ this }}
        )
    {% endif %}

)

select
    customer_id,
    view_date,
    count(*) as view_count,
    cast(sum(case when page_type = 'product' then 1 else 0 end) as bigint) as product_view_count,
    count(distinct session_key) as session_count
from page_views
group by customer_id, view_date
