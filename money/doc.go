// Package money is amounts and currencies: ISO codes with Stripe's decimal places, formatting and
// parsing of minor units. It owns no table and imports no package of Fanseed's, so that every
// package that shows or reads an amount (catalog, billing) can use it.
package money
