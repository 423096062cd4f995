package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

type invitationPage struct {
	layout
	Invitation billing.Invitation
	Token      string
	Next       string // this page, for the login link
	Problem    string
}

// handleInvitation is the page an invitation link opens: who invited whom to what, and a
// button for the invited person, once logged in with the invited, confirmed address.
func (s *Server) handleInvitation() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		inv, err := billing.FindInvitation(r.Context(), s.db, token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p := &invitationPage{layout: layout{Title: "Invitation"}, Invitation: inv, Token: token,
			Next: url.QueryEscape("/invitations/accept?token=" + url.QueryEscape(token))}
		if a := accountFrom(r.Context()); a != nil {
			switch {
			case !strings.EqualFold(a.Email, inv.Email):
				p.Problem = fmt.Sprintf("You are logged in as %s; this invitation is for %s. Log in with that address to accept it.", a.Email, inv.Email)
			case !a.Verified():
				p.Problem = "Confirm your address first with the link we emailed you (your account page sends a new one), then open this invitation again."
			}
		}
		s.render(w, r, http.StatusOK, "invitation", p)
	}
}

// handleInvitationAccept links the invited party to the logged-in account: its address must
// be the invited one, and confirmed.
func (s *Server) handleInvitationAccept() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		if !a.Verified() {
			s.fail(w, r, errUnverified)
			return
		}
		if _, err := billing.AcceptInvitation(r.Context(), s.db, r.PostFormValue("token"), a.ID, a.Email); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/statements", http.StatusSeeOther)
	}
}

// handlePartyInvite sends a party of the show's plan a new invitation (the last one expired,
// or never arrived).
func (s *Server) handlePartyInvite() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		show, err := s.showFromURL(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		partyID, err := strconv.ParseInt(chi.URLParam(r, "partyID"), 10, 64)
		if err != nil {
			s.fail(w, r, fmt.Errorf("party %q: %w", chi.URLParam(r, "partyID"), billing.ErrNotFound))
			return
		}
		on, err := billing.PartyOnShow(r.Context(), s.db, partyID, show.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !on {
			s.fail(w, r, fmt.Errorf("party %d on show %d: %w", partyID, show.ID, billing.ErrNotFound))
			return
		}
		acct := accountFrom(r.Context())
		base := s.absoluteURL(r, "")
		if err := pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			return s.invite(r.Context(), tx, base, partyID, show, *acct)
		}); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/shows/%d/plan?invited=1", show.ID), http.StatusSeeOther)
	}
}

// invite makes an invitation for the party and emails it, in tx.
func (s *Server) invite(ctx context.Context, tx pgx.Tx, base string, partyID int64, show catalog.Show, by catalog.Account) error {
	token, p, err := billing.CreateInvitation(ctx, tx, partyID, show.ID, by.ID)
	if err != nil {
		return err
	}
	_, err = s.mail.Send(ctx, tx, invitationMessage(base, p.ID, p.Name, *p.Email, show.Title, by.Name, token))
	return err
}
