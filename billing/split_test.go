package billing

import (
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name   string
		amount int64
		bps    []int
		want   []int64
	}{
		{"75/25 of 10.00", 1000, []int{7500, 2500}, []int64{750, 250}},
		{"thirds of one unit", 1, []int{3334, 3333, 3333}, []int64{1, 0, 0}},
		{"thirds of 100 ties to earlier line", 100, []int{3333, 3333, 3334}, []int64{33, 33, 34}},
		{"equal thirds of 2 units", 2, []int{3333, 3333, 3334}, []int64{1, 0, 1}},
		{"negative mirrors positive", -1000, []int{7500, 2500}, []int64{-750, -250}},
		{"zero", 0, []int{5000, 5000}, []int64{0, 0}},
		{"max int64", 1<<63 - 1, []int{5000, 5000}, []int64{1<<62 - 1 + 1, 1<<62 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.amount, tt.bps)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Split(%d, %v) = %v, want %v", tt.amount, tt.bps, got, tt.want)
			}
		})
	}
}

func TestSplitRejectsBadPlans(t *testing.T) {
	for _, bps := range [][]int{{}, {5000}, {5000, 5001}, {-1, 10001}, {10001, -1}} {
		if _, err := Split(100, bps); err == nil {
			t.Errorf("Split(100, %v) succeeded, want an error", bps)
		}
	}
}

// FuzzSplit checks the two promises of Split on arbitrary amounts and plans: the parts sum to
// the amount, and each part is within one minor unit of its exact share.
func FuzzSplit(f *testing.F) {
	f.Add(int64(1000), uint64(1), uint8(2))
	f.Add(int64(1), uint64(7), uint8(5))
	f.Add(int64(-999999999999), uint64(3), uint8(9))
	f.Add(int64(1<<63-1), uint64(11), uint8(3))
	f.Fuzz(func(t *testing.T, amount int64, seed uint64, n uint8) {
		if amount == -1<<63 {
			t.Skip("the smallest int64 has no positive counterpart")
		}
		bps := randomPlan(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), int(n%20)+1)
		parts, err := Split(amount, bps)
		if err != nil {
			t.Fatal(err)
		}
		checkSplit(t, amount, bps, parts)
	})
}

func TestSplitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	amounts := []int64{1, 2, 3, 99, 100, 101, 1<<63 - 1, -1, -7}
	for range 5000 {
		amounts = append(amounts, r.Int64N(1<<40)-1<<39, r.Int64N(1000))
	}
	for _, a := range amounts {
		bps := randomPlan(r, 1+r.IntN(12))
		parts, err := Split(a, bps)
		if err != nil {
			t.Fatal(err)
		}
		checkSplit(t, a, bps, parts)
	}
}

func checkSplit(t *testing.T, amount int64, bps []int, parts []int64) {
	t.Helper()
	sum := new(big.Int)
	for i, p := range parts {
		sum.Add(sum, big.NewInt(p))
		// |p*10000 - amount*bps| < 10000
		diff := new(big.Int).Mul(big.NewInt(p), big.NewInt(TotalBasisPoints))
		diff.Sub(diff, new(big.Int).Mul(big.NewInt(amount), big.NewInt(int64(bps[i]))))
		if diff.CmpAbs(big.NewInt(TotalBasisPoints)) >= 0 {
			t.Fatalf("Split(%d, %v): part %d = %d is a unit or more from its exact share", amount, bps, i, p)
		}
	}
	if sum.Cmp(big.NewInt(amount)) != 0 {
		t.Fatalf("Split(%d, %v) = %v sums to %s", amount, bps, parts, sum)
	}
}

// randomPlan makes n lines of at least one basis point each summing to 10000.
func randomPlan(r *rand.Rand, n int) []int {
	cuts := []int{0, TotalBasisPoints}
	for len(cuts) < n+1 {
		c := 1 + r.IntN(TotalBasisPoints-1)
		if !slices.Contains(cuts, c) {
			cuts = append(cuts, c)
		}
	}
	slices.Sort(cuts)
	bps := make([]int, n)
	for i := range n {
		bps[i] = cuts[i+1] - cuts[i]
	}
	return bps
}

func TestCurrencyParseFormat(t *testing.T) {
	usd, _ := LookupCurrency("usd")
	jpy, _ := LookupCurrency("JPY")
	kwd, _ := LookupCurrency("KWD")
	ok := []struct {
		c    Currency
		in   string
		want int64
		out  string
	}{
		{usd, "10", 1000, "10.00"}, {usd, "10.5", 1050, "10.50"}, {usd, "0.01", 1, "0.01"},
		{usd, "007.10", 710, "7.10"}, {jpy, "500", 500, "500"}, {kwd, "1.234", 1234, "1.234"},
		{usd, "0", 0, "0.00"},
	}
	for _, tt := range ok {
		got, err := tt.c.Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s Parse(%q) = %d, %v; want %d", tt.c.Code, tt.in, got, err, tt.want)
		}
		if s := tt.c.Format(got); s != tt.out {
			t.Errorf("%s Format(%d) = %q, want %q", tt.c.Code, got, s, tt.out)
		}
	}
	for _, in := range []string{"", "-1", "1.234", "1e5", "abc", "1.", ".5", "99999999999999999999"} {
		if _, err := usd.Parse(in); err == nil {
			t.Errorf("USD Parse(%q) succeeded, want an error", in)
		}
	}
	if _, err := jpy.Parse("1.5"); err == nil {
		t.Error("JPY Parse(1.5) succeeded, want an error")
	}
	if _, err := LookupCurrency("XYZ"); err == nil {
		t.Error("LookupCurrency(XYZ) succeeded")
	}
}
