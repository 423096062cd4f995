// Package notify writes the email people get about money: a receipt to each donor who gave an
// address (with, for a monthly donation, the link that changes or cancels it), a notice to a
// show's creator for each sponsorship paid, and a notice to each party for each payout. A River
// job finds what is due and writes each message to the outbox once, in the transaction that
// marks it done. It owns no table and imports billing, catalog, mail and money.
package notify
