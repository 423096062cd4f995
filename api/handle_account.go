package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

type accountPage struct {
	layout
	Sessions []catalog.Session
	Errors   catalog.FieldErrors
}

// noticePage is a short page: a heading, a few paragraphs, an optional one-button form
// (with a link token) and links.
type noticePage struct {
	layout
	Heading       string
	Paragraphs    []string
	Action, Token string
	Button        string
	Links         []noticeLink
}

type noticeLink struct{ Href, Text string }

func (s *Server) accountPage(r *http.Request, status int, w http.ResponseWriter, fe catalog.FieldErrors, flash string) {
	a := accountFrom(r.Context())
	current := ""
	if c, err := r.Cookie(sessionCookie); err == nil {
		current = c.Value
	}
	list, err := catalog.ListSessions(r.Context(), s.db, a.ID, current)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "account", &accountPage{layout: layout{Title: "Your account", Flash: flash}, Sessions: list, Errors: fe})
}

// handleAccount shows the account: its address and whether it is confirmed, the password
// form and the sessions it is logged in with.
func (s *Server) handleAccount() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flash := ""
		switch {
		case r.URL.Query().Get("password") != "":
			flash = "Password changed. Every other browser was logged out."
		case r.URL.Query().Get("sent") != "":
			flash = "We emailed you a new confirmation link."
		case r.URL.Query().Get("ended") != "":
			flash = "That session was logged out."
		}
		s.accountPage(r, http.StatusOK, w, nil, flash)
	}
}

// handlePasswordChange sets a new password when the current one is right; every session ends
// and this browser gets a new one.
func (s *Server) handlePasswordChange() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		_, err := catalog.ChangePassword(r.Context(), s.db, a.ID, r.PostFormValue("current_password"), r.PostFormValue("password"))
		var fe catalog.FieldErrors
		if errors.As(err, &fe) {
			s.accountPage(r, http.StatusBadRequest, w, fe, "")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.startSession(w, r, a.ID); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?password=1", http.StatusSeeOther)
	}
}

// handleSessionEnd logs out one of the account's sessions.
func (s *Server) handleSessionEnd() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "sessionID"), 10, 64)
		if err != nil {
			s.fail(w, r, fmt.Errorf("session %q: %w", chi.URLParam(r, "sessionID"), catalog.ErrNotFound))
			return
		}
		if err := catalog.EndSession(r.Context(), s.db, accountFrom(r.Context()).ID, id); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?ended=1", http.StatusSeeOther)
	}
}

// handleSessionsEnd logs the account out everywhere, this browser included.
func (s *Server) handleSessionsEnd() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := catalog.EndSessions(r.Context(), s.db, accountFrom(r.Context()).ID); err != nil {
			s.fail(w, r, err)
			return
		}
		s.clearSessionCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
}

// handleVerifyResend emails the logged-in account a new confirmation link (one per five
// minutes, however often it asks).
func (s *Server) handleVerifyResend() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := accountFrom(r.Context())
		if a.Verified() {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		base := s.absoluteURL(r, "")
		err := pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			token, err := catalog.CreateAccountToken(r.Context(), tx, *a, catalog.PurposeVerify)
			if err != nil {
				return err
			}
			created, err := s.mail.Send(r.Context(), tx, verifyMessage(base, a.ID, a.Name, a.Email, token,
				fmt.Sprintf("verify:%d:%d", a.ID, window(5*time.Minute))))
			if err == nil && !created {
				return errAlreadySent // keep the link already sent working
			}
			return err
		})
		if err != nil && !errors.Is(err, errAlreadySent) {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?sent=1", http.StatusSeeOther)
	}
}

// errAlreadySent rolls back a new link token when its message was sent a moment ago.
var errAlreadySent = errors.New("message already sent")

// handleVerifyForm is the page a confirmation link opens: a button, so that a mail scanner
// fetching the link confirms nothing.
func (s *Server) handleVerifyForm() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		a, err := catalog.CheckAccountToken(r.Context(), s.db, token, catalog.PurposeVerify)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "notice", &noticePage{layout: layout{Title: "Confirm your address"},
			Heading: "Confirm your address", Paragraphs: []string{"Confirm that " + a.Email + " is your address."},
			Action: "/verify", Token: token, Button: "Confirm"})
	}
}

// handleVerify spends a confirmation link: the address is proved, and the parties the account
// named itself as on its own shows' plans are linked to it.
func (s *Server) handleVerify() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			a, err := catalog.VerifyEmail(r.Context(), tx, r.PostFormValue("token"))
			if err != nil {
				return err
			}
			return billing.LinkOwnerParties(r.Context(), tx, a.ID, a.Email)
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next := noticeLink{"/login", "Log in"}
		if accountFrom(r.Context()) != nil {
			next = noticeLink{"/dashboard", "Go to your dashboard"}
		}
		s.render(w, r, http.StatusOK, "notice", &noticePage{layout: layout{Title: "Address confirmed"},
			Heading: "Address confirmed", Paragraphs: []string{"Thank you: your address is confirmed."}, Links: []noticeLink{next}})
	}
}

type forgotPage struct {
	layout
	Email, Error string
}

func (s *Server) handleForgotForm() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "password_forgot", &forgotPage{layout: layout{Title: "Forgot your password?"}})
	}
}

// handleForgot emails a reset link to the account with the address, if there is one; the
// answer is the same either way. One link per account per five minutes.
func (s *Server) handleForgot() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		email := strings.TrimSpace(r.PostFormValue("email"))
		if msg := catalog.CheckEmail(email); msg != "" {
			s.render(w, r, http.StatusBadRequest, "password_forgot", &forgotPage{layout: layout{Title: "Forgot your password?"}, Email: email, Error: msg})
			return
		}
		base := s.absoluteURL(r, "")
		err := pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			a, err := catalog.FindAccountByEmail(r.Context(), tx, email)
			if errors.Is(err, catalog.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			token, err := catalog.CreateAccountToken(r.Context(), tx, a, catalog.PurposeReset)
			if err != nil {
				return err
			}
			created, err := s.mail.Send(r.Context(), tx, resetMessage(base, a.ID, a.Name, a.Email, token))
			if err == nil && !created {
				return errAlreadySent
			}
			return err
		})
		if err != nil && !errors.Is(err, errAlreadySent) {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "notice", &noticePage{layout: layout{Title: "Check your email"}, Heading: "Check your email",
			Paragraphs: []string{"If an account has the address " + email + ", we emailed it a link to set a new password. The link works for an hour."}})
	}
}

type resetPage struct {
	layout
	Email, Token, Error string
}

// handleResetForm is the page a reset link opens.
func (s *Server) handleResetForm() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		a, err := catalog.CheckAccountToken(r.Context(), s.db, token, catalog.PurposeReset)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "password_reset", &resetPage{layout: layout{Title: "Set a new password"}, Email: a.Email, Token: token})
	}
}

// handleReset spends a reset link and sets the new password; every session of the account
// ends, so whoever knew the old password is logged out.
func (s *Server) handleReset() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := r.PostFormValue("token")
		var acct catalog.Account
		err := pgx.BeginFunc(r.Context(), s.db, func(tx pgx.Tx) error {
			a, err := catalog.ResetPassword(r.Context(), tx, token, r.PostFormValue("password"))
			acct = a
			return err
		})
		var fe catalog.FieldErrors
		if errors.As(err, &fe) {
			a, cerr := catalog.CheckAccountToken(r.Context(), s.db, token, catalog.PurposeReset)
			if cerr != nil {
				s.fail(w, r, cerr)
				return
			}
			s.render(w, r, http.StatusBadRequest, "password_reset", &resetPage{layout: layout{Title: "Set a new password"},
				Email: a.Email, Token: token, Error: fe["password"]})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.clearSessionCookie(w)
		r = r.WithContext(withoutAccount(r.Context()))
		s.render(w, r, http.StatusOK, "notice", &noticePage{layout: layout{Title: "Password set"}, Heading: "Password set",
			Paragraphs: []string{"The password of " + acct.Email + " is changed and the account was logged out everywhere."},
			Links:      []noticeLink{{"/login", "Log in"}}})
	}
}
