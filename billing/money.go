package billing

import (
	"errors"

	"github.com/fanseed/fanseed/money"
)

// Errors callers map to responses. ErrInvalid is money's, so an amount refused there is invalid
// here too.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = money.ErrInvalid
	ErrConflict = errors.New("conflict")
)

// Currency is money.Currency, under the name billing's callers know.
type Currency = money.Currency

// Money is money.Money: an amount in minor units of a currency.
type Money = money.Money

// LookupCurrency returns the currency for an ISO code in any letter case.
func LookupCurrency(code string) (Currency, error) { return money.LookupCurrency(code) }

// CurrencyCodes lists the accepted codes in a stable order, for forms.
func CurrencyCodes() []string { return money.CurrencyCodes() }

// StripeStep is the multiple of minor units Stripe accepts for amounts in a currency.
func StripeStep(currency string) int64 { return money.StripeStep(currency) }

// CheckStripeStep refuses an amount Stripe would not accept in its currency (see StripeStep).
func CheckStripeStep(amount int64, currency string) error {
	return money.CheckStripeStep(amount, currency)
}
