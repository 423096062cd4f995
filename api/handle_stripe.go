package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/fanseed/fanseed/billing"
)

// webhookMaxBytes bounds a Stripe event body; Stripe's largest events are far smaller.
const webhookMaxBytes = 256 << 10

// handleStripeWebhook receives Stripe's events: it checks the size, the signature (with its
// timestamp) and the API version, stores the event and enqueues its application in one
// transaction, and answers at once. Anything wrong with the request is a 400 that changes
// nothing; a repeated event is acknowledged and ignored.
func (s *Server) handleStripeWebhook() http.HandlerFunc {
	type response struct {
		Received  bool   `json:"received"`
		Duplicate bool   `json:"duplicate,omitempty"`
		Error     string `json:"error,omitempty"`
	}
	reply := func(w http.ResponseWriter, status int, resp response) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(resp)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		money := s.cfg.Money
		payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhookMaxBytes))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusBadRequest, response{Error: "body too large"})
			return
		}
		if err != nil {
			reply(w, http.StatusBadRequest, response{Error: "unreadable body"})
			return
		}
		// The signature first, then only the event's header is read: its object is decoded
		// once, when the event is applied.
		err = webhook.ValidatePayload(payload, r.Header.Get("Stripe-Signature"), money.WebhookSecret)
		if err != nil {
			msg := "bad signature"
			if !errors.Is(err, webhook.ErrNoValidSignature) && !errors.Is(err, webhook.ErrNotSigned) &&
				!errors.Is(err, webhook.ErrInvalidHeader) && !errors.Is(err, webhook.ErrTooOld) {
				msg = "malformed event"
			} else if errors.Is(err, webhook.ErrTooOld) {
				msg = "signature timestamp too old"
			}
			s.log.WarnContext(r.Context(), "stripe webhook refused", slog.String("reason", msg), slog.Any("error", err),
				slog.String("request_id", requestID(r)))
			reply(w, http.StatusBadRequest, response{Error: msg})
			return
		}
		ev, err := billing.ParseEventHeader(payload)
		if err != nil {
			reply(w, http.StatusBadRequest, response{Error: "malformed event"})
			return
		}
		if ev.APIVersion != stripe.APIVersion {
			s.log.ErrorContext(r.Context(), "stripe webhook API version mismatch: set the webhook endpoint's API version in "+
				"the Stripe dashboard to the one this build expects",
				slog.String("event_id", ev.ID), slog.String("event_api_version", ev.APIVersion),
				slog.String("expected_api_version", stripe.APIVersion))
			reply(w, http.StatusBadRequest, response{Error: "API version " + ev.APIVersion + " is not " + stripe.APIVersion})
			return
		}
		fresh, err := money.StoreEvent(r.Context(), ev, payload)
		if isDatabaseDown(err) { // Stripe sends it again after Retry-After
			s.dbHealth.markDown(r.Context(), err)
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			reply(w, http.StatusServiceUnavailable, response{Error: "database unavailable, send again"})
			return
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "stripe webhook not stored", slog.String("event_id", ev.ID), slog.Any("error", err),
				slog.String("request_id", requestID(r)))
			reply(w, http.StatusInternalServerError, response{Error: "not stored, send again"})
			return
		}
		reply(w, http.StatusOK, response{Received: true, Duplicate: !fresh})
	}
}

// absoluteURL is path on this site: BASE_URL when set, else the host the request came to.
func (s *Server) absoluteURL(r *http.Request, path string) string {
	if s.cfg.BaseURL != nil {
		return strings.TrimRight(s.cfg.BaseURL.String(), "/") + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}
