-- The applications whose features this build computes: those decided inside the window
-- (every application on a full rebuild). Each carries its decision time, the point in time
-- that every aggregate below must respect.
with

applications as (

    select * from {{ ref('stg_application') }}

),

final as (

    select
        sk_id_curr,
        decision_time
    from applications
    where {{ in_window('decision_time') }}

)

select * from final
