{#- true for rows whose time column falls in the window being built (all rows when no window). -#}
{% macro in_window(column) -%}
    {%- if var('start_hour') is not none and var('end_hour') is not none -%}
        ({{ column }} >= cast('{{ var("start_hour") }}' as timestamp) and {{ column }} < cast('{{ var("end_hour") }}' as timestamp))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- A silver table, pinned to the lake snapshot Dagster recorded (latest when none). -#}
{% macro silver(table) -%}
    {{ source('silver', table) }}{% if var('silver_snapshot') is not none %} at (version => {{ var('silver_snapshot') }}){% endif %}
{%- endmacro %}
