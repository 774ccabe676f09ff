-- The label: did the loan default within the outcome window. Lands after the window.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('loan_outcome') }}

),

renamed as (

    select
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(TARGET as bigint) as target,
        cast(OUTCOME_TIME as timestamp) as outcome_time
    from source

),

final as (

    select * from renamed

)

select * from final
