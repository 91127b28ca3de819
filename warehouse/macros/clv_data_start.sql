{#- The earliest timestamp trusted in raw data (var data_start); earlier rows are quarantined. -#}
{% macro clv_data_start() -%}
  cast('{{ var("data_start") }}' as {{ api.Column.translate_type('timestamp') }})
{%- endmacro %}
