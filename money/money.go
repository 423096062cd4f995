package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid marks an amount or currency that cannot be used; billing.ErrInvalid is the same error.
var ErrInvalid = errors.New("invalid")

// Currency is an ISO 4217 code with the number of decimal places Stripe uses for it.
type Currency struct {
	Code     string
	Exponent int
}

// currencies lists what Fanseed accepts: the common Stripe presentment currencies, with Stripe's
// zero-decimal and three-decimal ones marked.
var currencies = map[string]int{
	"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CHF": 2, "SEK": 2, "NOK": 2,
	"DKK": 2, "PLN": 2, "CZK": 2, "RON": 2, "BGN": 2, "MXN": 2, "BRL": 2, "INR": 2, "SGD": 2,
	"HKD": 2, "ZAR": 2, "ILS": 2, "TRY": 2, "THB": 2, "MYR": 2, "PHP": 2, "IDR": 2, "TWD": 2,
	"AED": 2, "SAR": 2, "COP": 2, "ARS": 2, "PEN": 2, "NGN": 2, "KES": 2, "EGP": 2, "CNY": 2,
	// Zero-decimal currencies, as Stripe defines them.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "JPY": 0, "KMF": 0, "KRW": 0, "MGA": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// Three-decimal currencies.
	"BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}

// LookupCurrency returns the currency for an ISO code in any letter case.
func LookupCurrency(code string) (Currency, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	exp, ok := currencies[c]
	if !ok {
		return Currency{}, fmt.Errorf("%w: unknown currency %q", ErrInvalid, code)
	}
	return Currency{Code: c, Exponent: exp}, nil
}

// CurrencyCodes lists the accepted codes in a stable order, for forms.
func CurrencyCodes() []string {
	first := []string{"USD", "EUR", "GBP", "CAD", "AUD", "JPY"}
	seen := map[string]bool{}
	out := append([]string(nil), first...)
	for _, c := range first {
		seen[c] = true
	}
	rest := make([]string, 0, len(currencies))
	for c := range currencies {
		if !seen[c] {
			rest = append(rest, c)
		}
	}
	sortStrings(rest)
	return append(out, rest...)
}

// Money is an amount in minor units of a currency (cents for USD, yen for JPY).
type Money struct {
	Amount   int64
	Currency string
}

func (m Money) String() string {
	c, err := LookupCurrency(m.Currency)
	if err != nil {
		return fmt.Sprintf("%d %s", m.Amount, m.Currency)
	}
	return c.Format(m.Amount) + " " + c.Code
}

// Format writes minor units as a decimal string: 1050 USD is "10.50", 1050 JPY is "1050".
func (c Currency) Format(minor int64) string {
	var b [32]byte
	return string(c.Append(b[:0], minor))
}

// Append appends Format's text of minor units to b, for writers that put many amounts in one
// buffer.
func (c Currency) Append(b []byte, minor int64) []byte {
	u := uint64(minor)
	if minor < 0 {
		b = append(b, '-')
		u = -u
	}
	if c.Exponent <= 0 {
		return strconv.AppendUint(b, u, 10)
	}
	units, frac := uint64(0), u // more decimals than a uint64 has digits: all of it is fraction
	if c.Exponent <= 19 {
		p := uint64(1)
		for range c.Exponent {
			p *= 10
		}
		units, frac = u/p, u%p
	}
	// The units (0 for 5 cents: 0.05), then exactly Exponent digits.
	b = strconv.AppendUint(b, units, 10)
	b = append(b, '.')
	for range c.Exponent {
		b = append(b, '0')
	}
	for i, f := len(b)-1, frac; f > 0; i, f = i-1, f/10 {
		b[i] = byte('0' + f%10)
	}
	return b
}

// Parse reads a decimal amount ("10", "10.5", "10.50") into minor units. It refuses more
// decimal places than the currency has, signs, exponents and amounts that overflow.
func (c Currency) Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: amount is empty", ErrInvalid)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if hasDot && c.Exponent == 0 {
		return 0, fmt.Errorf("%w: %s has no decimal places", ErrInvalid, c.Code)
	}
	if len(frac) > c.Exponent {
		return 0, fmt.Errorf("%w: %s allows at most %d decimal places", ErrInvalid, c.Code, c.Exponent)
	}
	if whole == "" || !allDigits(whole) || (hasDot && (frac == "" || !allDigits(frac))) {
		return 0, fmt.Errorf("%w: %q is not a number like 10 or 10.50", ErrInvalid, s)
	}
	digits := strings.TrimLeft(whole, "0") + frac + strings.Repeat("0", c.Exponent-len(frac))
	if digits == "" || strings.TrimLeft(digits, "0") == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.TrimLeft(digits, "0"), 10, 64)
	if err != nil || v > math.MaxInt64/10000 {
		return 0, fmt.Errorf("%w: amount is too large", ErrInvalid)
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// StripeStep is the multiple of minor units Stripe accepts for amounts in a currency: 10 in
// three-decimal currencies (KWD, BHD, JOD, OMR, TND), whose last digit must be 0; else 1.
func StripeStep(currency string) int64 {
	if cur, err := LookupCurrency(currency); err == nil && cur.Exponent == 3 {
		return 10
	}
	return 1
}

// CheckStripeStep refuses an amount Stripe would not accept in its currency (see StripeStep).
func CheckStripeStep(amount int64, currency string) error {
	if step := StripeStep(currency); amount%step != 0 {
		return fmt.Errorf("%w: %s amounts must be whole multiples of %s, as Stripe charges them", ErrInvalid,
			strings.ToUpper(currency), Money{Amount: step, Currency: currency})
	}
	return nil
}
