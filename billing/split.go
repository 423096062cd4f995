package billing

import (
	"fmt"
	"math/bits"
	"sort"
)

// TotalBasisPoints is what the lines of every share plan sum to: 100.00%.
const TotalBasisPoints = 10000

// Split divides amount (minor units, any sign) by basis points with the largest-remainder
// method: each part is its exact share rounded down, then the units left over go one each to
// the parts with the largest remainders, ties to the earlier line. The parts always sum to
// amount, and no part is a full unit or more away from its exact share.
func Split(amount int64, bps []int) ([]int64, error) {
	total := 0
	for i, b := range bps {
		if b < 0 || b > TotalBasisPoints {
			return nil, fmt.Errorf("%w: line %d has %d basis points", ErrInvalid, i+1, b)
		}
		total += b
	}
	if total != TotalBasisPoints {
		return nil, fmt.Errorf("%w: lines sum to %d basis points, not %d", ErrInvalid, total, TotalBasisPoints)
	}
	neg := amount < 0
	abs := uint64(amount)
	if neg {
		abs = -abs
	}
	parts := make([]int64, len(bps))
	rems := make([]uint64, len(bps))
	var sum uint64
	for i, b := range bps {
		hi, lo := bits.Mul64(abs, uint64(b))
		q, r := bits.Div64(hi, lo, TotalBasisPoints) // hi < 10000 since b <= 10000
		parts[i], rems[i] = int64(q), r
		sum += q
	}
	order := make([]int, len(bps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for k := uint64(0); k < abs-sum; k++ {
		parts[order[k]]++
	}
	if neg {
		for i := range parts {
			parts[i] = -parts[i]
		}
	}
	return parts, nil
}
