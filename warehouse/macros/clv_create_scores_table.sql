{#-
    The tables that `clv score` writes after dbt (clv_scores, clv_scoring_thresholds), created
    empty when absent so that the models on source('clv', ...) build on a first run, before
    anything was scored. Called from on-run-start in dbt_project.yml. Their columns, types and
    not-null flags are those declared for the source in models/staging/clv/_clv__sources.yml:
    the one definition of the tables, which clv_models.warehouse.contract reads too. A table
    created by an earlier release gains the columns declared since (added as nullable columns,
    so its rows are kept).
-#}
{% macro clv_create_scores_table() -%}
{%- if execute -%}
{%- for source in graph.sources.values() | selectattr('source_name', 'equalto', 'clv') %}
create table if not exists {{ source.schema }}.{{ source.identifier }} (
{%- for column in source.columns.values() %}
    {{ column.name }} {{ column.data_type }}
    {%- if column.meta.get('not_null') %} not null{% endif %}{{ ',' if not loop.last }}
{%- endfor %}
);
{%- for column in source.columns.values() %}
alter table {{ source.schema }}.{{ source.identifier }}
    add column if not exists {{ column.name }} {{ column.data_type }};
{%- endfor %}
{%- endfor %}
{%- else -%}
select 1
{%- endif -%}
{%- endmacro %}
