{#-
    The scored table that `clv score` (clv_models/scoring.py) writes after dbt, created empty
    when absent so that the models on source('clv', 'clv_scores') build on a first run, before
    anything was scored. Called from on-run-start in dbt_project.yml. The columns and types are
    those of clv_models.scoring.SCORES_DDL (a test keeps the two equal); the view is
    scoring.LATEST_VIEW's.
-#}
{% macro clv_create_scores_table() -%}
create table if not exists main.clv_scores (
    customer_id varchar not null,
    as_of_date date not null,
    horizon_days integer not null,
    model_name varchar not null,
    model_version varchar not null,
    predicted_clv double not null,
    p_purchase double,
    clv_p10 double,
    clv_p50 double,
    clv_p90 double,
    clv_decile integer,
    segment varchar,
    top_drivers varchar,
    scored_at timestamp not null,
    run_id varchar not null
)
{%- endmacro %}

{% macro clv_create_scores_latest_view() -%}
create view if not exists main.clv_scores_latest as
select *
from main.clv_scores
qualify row_number() over (
    partition by customer_id, model_name order by as_of_date desc, scored_at desc
) = 1
{%- endmacro %}
