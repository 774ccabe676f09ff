-- Monthly balance of previous point-of-sale (consumer) and cash loans with us.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('pos_cash_balance') }}

),

renamed as (

    select
        cast(SK_ID_PREV as bigint) as sk_id_prev,
        cast(SK_ID_CURR as bigint) as sk_id_curr,
        cast(BALANCE_MONTH as date) as balance_month,
        cast(CNT_INSTALMENT as double) as cnt_instalment,
        cast(CNT_INSTALMENT_FUTURE as double) as cnt_instalment_future,
        cast(NAME_CONTRACT_STATUS as varchar) as name_contract_status,
        cast(SK_DPD as bigint) as sk_dpd,
        cast(SK_DPD_DEF as bigint) as sk_dpd_def
    from source

),

final as (

    select * from renamed

)

select * from final
