// Package mail sends Fanseed's email: each message is a row of the outbox, written in the
// transaction of what it tells of, and sent over SMTP by a River job with retries. Without an
// SMTP server the messages stay in the outbox, where the admin reads them. It owns outbox and
// imports no package of Fanseed's.
package mail
