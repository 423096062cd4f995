package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail"
)

type outboxPage struct {
	layout
	Entries []mail.Entry
	Sends   bool
	SMTP    string
	Older   int64
}

type outboxMessagePage struct {
	layout
	Entry  mail.Entry
	Hidden bool
}

const outboxPageSize = 100

// handleOutbox lists the email Fanseed sent or holds, newest first, for the admin: without an
// SMTP server, this is where messages are read.
func (s *Server) handleOutbox() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
		list, err := mail.ListOutbox(r.Context(), s.db, before, outboxPageSize)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &outboxPage{layout: layout{Title: "Outbox"}, Entries: list, Sends: s.mail.Sends()}
		if p.Sends {
			p.SMTP = s.mail.Sender.Addr()
		}
		if len(list) == outboxPageSize {
			p.Older = list[len(list)-1].ID
		}
		s.render(w, r, http.StatusOK, "outbox", p)
	}
}

// handleOutboxMessage shows one message. The text of a sent message with a one-time link is
// gone: the link lives only in the recipient's mailbox.
func (s *Server) handleOutboxMessage() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "messageID"), 10, 64)
		if err != nil {
			s.fail(w, r, fmt.Errorf("message %q: %w", chi.URLParam(r, "messageID"), catalog.ErrNotFound))
			return
		}
		e, err := mail.FindEntry(r.Context(), s.db, id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "outbox_message", &outboxMessagePage{layout: layout{Title: e.Subject}, Entry: e,
			Hidden: e.Secret && e.Status != mail.StatusHeld})
	}
}
