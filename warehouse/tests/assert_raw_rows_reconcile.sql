-- Nothing is silently lost: for every raw table, raw rows = clean rows + quarantined rows
-- (quarantine includes removed duplicates, each with its reason). Returns the tables that do
-- not add up.
with

raw_counts as (

    select 'orders' as source_table, count(*) as raw_rows from {{ source('raw', 'orders') }}
    union all
    select 'returns', count(*) from {{ source('raw', 'returns') }}
    union all
    select 'page_views', count(*) from {{ source('raw', 'page_views') }}
    union all
    select 'customers', count(*) from {{ source('raw', 'customers') }}

),

clean_counts as (

    select 'orders' as source_table, count(*) as clean_rows from {{ ref('stg_raw__orders') }}
    union all
    select 'returns', count(*) from {{ ref('stg_raw__returns') }}
    union all
    select 'page_views', count(*) from {{ ref('stg_raw__page_views') }}
    union all
    select 'customers', count(*) from {{ ref('stg_raw__customers') }}

),

quarantined_counts as (

    select source_table, count(*) as quarantined_rows
    from {{ ref('stg_raw__quarantined_rows') }}
    group by source_table

)

select
    raw_counts.source_table,
    raw_counts.raw_rows,
    clean_counts.clean_rows,
    coalesce(quarantined_counts.quarantined_rows, 0) as quarantined_rows
from raw_counts
inner join clean_counts
    on raw_counts.source_table = clean_counts.source_table
left join quarantined_counts
    on raw_counts.source_table = quarantined_counts.source_table
where raw_counts.raw_rows
    <> clean_counts.clean_rows + coalesce(quarantined_counts.quarantined_rows, 0)
