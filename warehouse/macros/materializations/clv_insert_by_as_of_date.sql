{#-
  Materialization clv_insert_by_as_of_date: a table built in batches of as-of dates.

  Models that pair every activity day with the as-of dates after it (trailing windows, weekly
  sequences) grow with customers x as-of dates; one statement over all dates needs memory for
  all of them at once (a 1M-customer shop ran DuckDB out of memory). This materialization runs
  the model once per batch of `as_of_batch_size` dates (config; default 4) and appends, so
  memory is bounded by one batch. It is the classic insert-by-period pattern, written for our
  as-of schedule (ref('int_as_of_dates')).

  The model marks where its as-of dates are chosen with {{ clv_as_of_batch('column') }}. On its
  own (dbt unit tests, `dbt show`, compile) the macro renders `true` behind a marker comment;
  the materialization swaps that for `column in (<the batch's dates>)`. The result replaces the
  table in one rename at the end, so readers never see a half-built table.
-#}
{% macro clv_as_of_batch(column) -%}
  /*clv_as_of_batch:{{ column }}*/ true
{%- endmacro %}

{% macro clv_as_of_batch_sql(sql, dates) -%}
  {%- set pattern = '/\\*clv_as_of_batch:([^*]+)\\*/ true' -%}
  {%- set found = modules.re.search(pattern, sql) -%}
  {%- if not found -%}
    {{ exceptions.raise_compiler_error(
        "model " ~ model.name ~ " is materialized as clv_insert_by_as_of_date but does not "
        ~ "call clv_as_of_batch('<as-of date column>') where it selects its as-of dates") }}
  {%- endif -%}
  {%- if dates | length == 0 -%}
    {%- set condition = 'false' -%}
  {%- else -%}
    {%- set literals = [] -%}
    {%- for d in dates -%}
      {%- do literals.append("cast('" ~ d ~ "' as date)") -%}
    {%- endfor -%}
    {%- set condition = found.group(1) ~ ' in (' ~ literals | join(', ') ~ ')' -%}
  {%- endif -%}
  {{ return(modules.re.sub(pattern, condition, sql)) }}
{%- endmacro %}

{% materialization clv_insert_by_as_of_date, default %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
  {%- set batch_size = config.get('as_of_batch_size', 4) | int -%}
  {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
  {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set dates_result = run_query(
      'select as_of_date from ' ~ ref('int_as_of_dates') ~ ' order by as_of_date') -%}
  {%- set dates = dates_result.columns[0].values() | map('string') | list -%}
  {%- set batches = dates | batch(batch_size) | list if dates else [[]] -%}

  {% call statement('main') -%}
    {{ get_create_table_as_sql(False, intermediate_relation,
                               clv_as_of_batch_sql(sql, batches[0])) }}
  {%- endcall %}
  {%- for batch in batches[1:] %}
    {%- do log(model.name ~ ": as-of dates " ~ batch[0] ~ " .. " ~ batch[-1]
               ~ " (batch " ~ (loop.index + 1) ~ " of " ~ (batches | length) ~ ")", info=True) %}
    {% call statement('insert_batch_' ~ loop.index) -%}
      insert into {{ intermediate_relation }} {{ clv_as_of_batch_sql(sql, batch) }}
    {%- endcall %}
  {%- endfor %}

  {% if existing_relation is not none %}
    {{ adapter.rename_relation(existing_relation, backup_relation) }}
  {% endif %}
  {{ adapter.rename_relation(intermediate_relation, target_relation) }}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ drop_relation_if_exists(backup_relation) }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
