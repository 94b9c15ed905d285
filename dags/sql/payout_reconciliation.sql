-- Payout reconciliation: one row per payout, its amount against the balance transactions it paid out.
--
-- Rendered by Airflow (Jinja: stripe_schema) and run by task refresh_payout_reconciliation after the
-- payouts and payout_balance_transactions loads. Idempotent: safe to run on every run.
--
-- Stripe lists, for an automatic payout, every balance transaction it paid out
-- (GET /v1/balance_transactions?payout=po_...), and that list includes the payout's own transactions:
-- its type=payout debit (payouts.balance_transaction, amount = -payout amount) and, if it failed or was
-- canceled, the payout_failure / payout_cancel credit that put the money back (failure_balance_transaction).
-- Those are left out, so for every automatic payout:
--     payout amount = sum(net) of the transactions it paid out
-- A payout_failure of an EARLIER payout that this payout paid out again does count (its source is the
-- earlier payout, not this one).
--
-- agrees is null (not judged) when the data cannot be complete, and note says why:
--   * manual payouts: Stripe does not say which transactions a manual payout paid out;
--   * payouts whose transactions were not loaded (a day without its payout_balance_transactions run,
--     or a payout loaded only because an event changed it);
--   * payouts Stripe is still reconciling (reconciliation_status = in_progress).
-- Failed and canceled payouts are still judged (the transactions they tried to pay out must add up),
-- with a note that the money went back to the Stripe balance.
CREATE OR REPLACE VIEW "{{ stripe_schema }}".payout_reconciliation AS
SELECT
    p.id,
    p.created,
    p.arrival_date,
    p.status,
    p.currency,
    p.amount,
    t.transactions_net,
    t.transactions_fee,
    t.transactions_amount,
    t.transaction_count,
    p.amount - t.transactions_net AS difference,
    CASE
        WHEN p.automatic IS NOT FALSE
            AND t.listed > 0
            AND p.reconciliation_status IS DISTINCT FROM 'in_progress'
        THEN p.amount = t.transactions_net
    END AS agrees,
    CASE
        WHEN p.automatic IS FALSE
            THEN 'manual payout: Stripe does not list the transactions it paid out'
        WHEN t.listed = 0
            THEN 'transactions not loaded: run payout_balance_transactions for the day the payout was created'
        WHEN p.reconciliation_status = 'in_progress'
            THEN 'Stripe is still reconciling this payout: reload payout_balance_transactions for its day later'
        WHEN p.status IN ('failed', 'canceled')
            THEN 'payout ' || p.status || ': the amount went back to the Stripe balance'
    END AS note,
    p.automatic,
    p.reconciliation_status,
    p.balance_transaction AS payout_balance_transaction,
    p.failure_balance_transaction
FROM "{{ stripe_schema }}".payouts AS p
CROSS JOIN LATERAL (
    SELECT
        count(*) AS listed,
        count(*) FILTER (WHERE NOT own.is_own) AS transaction_count,
        CASE WHEN count(*) > 0 THEN coalesce(sum(bt.net) FILTER (WHERE NOT own.is_own), 0) END::bigint
            AS transactions_net,
        CASE WHEN count(*) > 0 THEN coalesce(sum(bt.fee) FILTER (WHERE NOT own.is_own), 0) END::bigint
            AS transactions_fee,
        CASE WHEN count(*) > 0 THEN coalesce(sum(bt.amount) FILTER (WHERE NOT own.is_own), 0) END::bigint
            AS transactions_amount
    FROM "{{ stripe_schema }}".payout_balance_transactions AS bt
    CROSS JOIN LATERAL (
        SELECT coalesce(
            bt.id = p.balance_transaction
            OR bt.id = p.failure_balance_transaction
            OR bt.source = p.id,
            false
        ) AS is_own
    ) AS own
    WHERE bt.payout = p.id
      AND bt._deleted_at IS NULL
) AS t
WHERE p._deleted_at IS NULL;

COMMENT ON VIEW "{{ stripe_schema }}".payout_reconciliation IS
    'Per Stripe payout: amount vs the net of the balance transactions it paid out (without its own payout '
    'and failure transactions). agrees is null where the data cannot be complete; note says why. '
    'Refreshed by the stripe_finance_daily DAG.';
