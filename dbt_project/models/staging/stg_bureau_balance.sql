-- Monthly status of each bureau credit.
-- Renames and types only: one row per silver row.
with

source as (

    select * from {{ silver('bureau_balance') }}

),

renamed as (

    select
        cast(SK_ID_BUREAU as bigint) as sk_id_bureau,
        cast(BALANCE_MONTH as date) as balance_month,
        cast(STATUS as varchar) as status
    from source

),

final as (

    select * from renamed

)

select * from final
