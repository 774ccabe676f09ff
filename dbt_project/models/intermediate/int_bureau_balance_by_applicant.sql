-- Monthly statuses of bureau credits known at decision time, per applicant.
-- STATUS: 0 = no days past due, 1..5 = DPD buckets (5: 120+), C = closed, X = unknown.
with

applications as (

    select * from {{ ref('int_applications_in_window') }}

),

bureau as (

    select * from {{ ref('stg_bureau') }}

),

bureau_balance as (

    select * from {{ ref('stg_bureau_balance') }}

),

known as (

    select
        applications.sk_id_curr,
        applications.decision_time,
        bureau_balance.balance_month,
        bureau_balance.status,
        case when bureau_balance.status in ('1', '2', '3', '4', '5')
             then cast(bureau_balance.status as integer) else 0 end as dpd_bucket
    from applications
    inner join bureau
        on bureau.sk_id_curr = applications.sk_id_curr
        and bureau.reported_at < applications.decision_time
    inner join bureau_balance
        on bureau_balance.sk_id_bureau = bureau.sk_id_bureau
        and bureau_balance.balance_month < applications.decision_time

),

final as (

    select
        sk_id_curr,
        count(*) as bureau_balance_months,
        max(dpd_bucket) as bureau_worst_dpd_bucket,
        avg(case when dpd_bucket > 0 then 1.0 else 0.0 end) as bureau_dpd_month_share,
        count(*) filter (
            where dpd_bucket > 0 and balance_month >= cast(decision_time as date) - interval 12 month
        ) as bureau_dpd_months_last_12m
    from known
    group by sk_id_curr

)

select * from final
