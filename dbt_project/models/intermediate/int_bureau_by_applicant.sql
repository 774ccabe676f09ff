-- Credits at other lenders known at decision time (reported strictly before it), per applicant.
with

applications as (

    select * from {{ ref('int_applications_in_window') }}

),

bureau as (

    select * from {{ ref('stg_bureau') }}

),

known as (

    select
        applications.sk_id_curr,
        applications.decision_time,
        bureau.*  exclude (sk_id_curr)
    from applications
    inner join bureau
        on bureau.sk_id_curr = applications.sk_id_curr
        and bureau.reported_at < applications.decision_time

),

final as (

    select
        sk_id_curr,
        count(*) as bureau_credit_count,
        count(*) filter (where credit_active = 'Active') as bureau_active_count,
        count(*) filter (where credit_active = 'Closed') as bureau_closed_count,
        count(*) filter (where credit_active in ('Bad debt', 'Sold')) as bureau_bad_debt_count,
        count(*) filter (where credit_day_overdue > 0) as bureau_overdue_count,
        max(credit_day_overdue) as bureau_max_days_overdue,
        sum(coalesce(amt_credit_sum_debt, 0)) as bureau_total_debt,
        sum(amt_credit_sum_overdue) as bureau_total_overdue,
        sum(coalesce(amt_credit_sum_debt, 0)) / nullif(sum(amt_credit_sum), 0) as bureau_debt_credit_ratio,
        min(date_diff('day', date_credit, cast(decision_time as date))) as bureau_days_since_last_credit,
        cast(sum(cnt_credit_prolong) as bigint) as bureau_prolong_count
    from known
    group by sk_id_curr

)

select * from final
