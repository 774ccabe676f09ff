-- Monthly balance of previous credit cards.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('credit_card_balance') }}

),

renamed as (

    select
        cast(SK_ID_PREV as bigint) as sk_id_prev,
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(BALANCE_MONTH as date) as balance_month,
        cast(AMT_BALANCE as double) as amt_balance,
        cast(AMT_CREDIT_LIMIT_ACTUAL as double) as amt_credit_limit_actual,
        cast(AMT_DRAWINGS_CURRENT as double) as amt_drawings_current,
        cast(AMT_PAYMENT_CURRENT as double) as amt_payment_current,
        cast(SK_DPD as bigint) as sk_dpd
    from source

),

final as (

    select * from renamed

)

select * from final
