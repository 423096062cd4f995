package seeding

import (
	"errors"
	"fmt"
)

// Errors callers map to responses.
var (
	// ErrInvalid marks input that is wrong and will stay wrong if sent again.
	ErrInvalid = errors.New("invalid")
	// ErrNotAllowed marks a torrent this platform did not publish.
	ErrNotAllowed = errors.New("not allowed")
	// ErrRateLimited marks a request refused because its sender made too many of them.
	ErrRateLimited = errors.New("rate limited")
)

// reasonError is an error whose text is written for the person or client that sent the input,
// so it can go into a tracker's "failure reason" or a form as it is.
type reasonError struct {
	kind   error
	reason string
}

func (e *reasonError) Error() string        { return e.reason }
func (e *reasonError) Is(target error) bool { return target == e.kind }

// invalidf returns an ErrInvalid whose text is safe to show the sender.
func invalidf(format string, args ...any) error {
	return &reasonError{kind: ErrInvalid, reason: fmt.Sprintf(format, args...)}
}

// FailureReason returns the text to show a client for an error from this package, and a plain
// message for anything else, so internal details never reach a client.
func FailureReason(err error) string {
	var r *reasonError
	if errors.As(err, &r) {
		return r.reason
	}
	return "internal tracker error"
}
