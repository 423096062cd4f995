package api

import (
	"errors"
	"log/slog"
	"net/http"
	"syscall"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/live"
	"github.com/fanseed/fanseed/mail"
)

// errStorageFullText is what people read when the server's disk is full: the error itself
// names paths on the server.
const errStorageFullText = "The server has no room left to store this. Please try again later."

// errForbidden is returned when an account may not do what it asked.
var errForbidden = errors.New("forbidden")

// errUnverified is an account that must confirm its email address before it does this.
var errUnverified = errors.New("confirm your email address first")

// statusOf is the one table from errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case isDatabaseDown(err):
		return http.StatusServiceUnavailable
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, billing.ErrNotFound), errors.Is(err, mail.ErrNotFound), errors.Is(err, live.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errForbidden), errors.Is(err, billing.ErrStatementForbidden), errors.Is(err, errUnverified),
		errors.Is(err, billing.ErrInvitationElsewhere):
		return http.StatusForbidden
	case errors.Is(err, catalog.ErrLinkExpired), errors.Is(err, billing.ErrInvitationExpired), errors.Is(err, billing.ErrManageExpired):
		return http.StatusGone
	case errors.Is(err, catalog.ErrConflict), errors.Is(err, billing.ErrConflict), errors.Is(err, live.ErrLive):
		return http.StatusConflict
	case errors.Is(err, catalog.ErrInvalid), errors.Is(err, billing.ErrInvalid), errors.Is(err, mail.ErrInvalid), errors.Is(err, live.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, catalog.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, catalog.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, catalog.ErrStorageFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// fail answers a request that hit an error: a page with a plain message, and the detail in
// the log for a 5xx.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	switch {
	case errors.Is(err, errUnverified):
		s.renderError(w, r, status, "Confirm your email address first",
			"Open the link we emailed you (or ask for a new one on your account page). Until then no money can be linked to your account.")
		return
	case errors.Is(err, billing.ErrInvitationElsewhere):
		s.renderError(w, r, status, "Not your invitation", "This invitation was sent to another address. Log in with the invited address to accept it.")
		return
	case status == http.StatusGone:
		s.renderError(w, r, status, "Link expired", "This link has expired or was already used. Ask for a new one.")
		return
	}
	switch status {
	case http.StatusInternalServerError:
		s.serverError(w, r, err)
	case http.StatusServiceUnavailable:
		s.unavailable(w, r, err)
	case http.StatusInsufficientStorage:
		s.log.WarnContext(r.Context(), "storage full", slog.String("path", r.URL.Path), slog.Any("error", err))
		s.renderError(w, r, status, "No room left", errStorageFullText)
	case http.StatusNotFound:
		s.renderError(w, r, status, "Not found", "There is nothing here, or it is not yours to see.")
	case http.StatusForbidden:
		s.renderError(w, r, status, "Not allowed", "Your account may not do this.")
	default:
		s.renderError(w, r, status, http.StatusText(status), userMessage(err.Error()))
	}
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if isDatabaseDown(err) {
		s.unavailable(w, r, err)
		return
	}
	if statusOf(err) == http.StatusInsufficientStorage {
		s.fail(w, r, err)
		return
	}
	s.log.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", err),
		slog.String("request_id", requestID(r)))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write([]byte("Something went wrong on our side. Please try again; if it keeps happening, tell us the time it happened.\n"))
}
