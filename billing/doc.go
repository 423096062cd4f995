// Package billing is money: share plans and splits, the ledger, Stripe, refunds and disputes,
// payouts and statements (amounts and currencies themselves are package money). It owns parties,
// share plans, the ledger, donations and their management links, sponsorships, refunds, payouts,
// stripe_events and the statement tables. It imports only money of Fanseed's packages.
package billing
