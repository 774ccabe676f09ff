-- Repayment behaviour on earlier credits, from instalments whose event time (payment date, or due
-- date while unpaid) is strictly before the decision. Instalments of the new loan come later and
-- are never seen here.
with

applications as (

    select * from {{ ref('int_applications_in_window') }}

),

installments as (

    select * from {{ ref('stg_installments_payments') }}

),

known as (

    select
        applications.sk_id_curr,
        installments.amt_instalment,
        coalesce(installments.amt_payment, 0) as amt_payment,
        installments.payment_date is null as unpaid,
        greatest(date_diff('day', installments.due_date, coalesce(installments.payment_date,
                                                                  cast(applications.decision_time as date))), 0)
            as days_late
    from applications
    inner join installments
        on installments.sk_id_curr = applications.sk_id_curr
        and coalesce(installments.payment_date, installments.due_date) < applications.decision_time

),

final as (

    select
        sk_id_curr,
        count(*) as inst_count,
        count(*) filter (where days_late > 0) as inst_late_count,
        avg(case when days_late > 0 then 1.0 else 0.0 end) as inst_late_ratio,
        avg(days_late) as inst_days_late_mean,
        max(days_late) as inst_days_late_max,
        count(*) filter (where amt_payment < amt_instalment - 0.005) as inst_underpaid_count,
        greatest(sum(amt_instalment - amt_payment), 0) / nullif(sum(amt_instalment), 0) as inst_underpayment_ratio,
        count(*) filter (where unpaid) as inst_unpaid_count
    from known
    group by sk_id_curr

)

select * from final
