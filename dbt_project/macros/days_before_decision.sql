{#- Whole days from a date the application states (registration, id document, phone change) to the decision
    date: null when the date is after the decision date (not knowable then, so not a valid statement) or 101
    years or more before it (AGE_YEARS <= 100: nothing is dated before the applicant's birth). -#}
{% macro days_before_decision(date_column, decision_column='decision_time') -%}
    case
        when {{ date_column }} <= cast({{ decision_column }} as date)
            and {{ date_column }} > cast({{ decision_column }} as date) - 36891
        then date_diff('day', {{ date_column }}, cast({{ decision_column }} as date))
    end
{%- endmacro %}
