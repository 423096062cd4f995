package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fanseed/fanseed/catalog"
)

type tokensPage struct {
	layout
	Tokens                         []catalog.Token
	Name, Scope, Expiry            string
	Error, ScopeError, ExpiryError string
	Expiries                       []string
	Now                            time.Time
	Created                        string // the secret of the token just created, shown this once
}

func (s *Server) tokensPage(r *http.Request) (*tokensPage, error) {
	list, err := catalog.ListTokens(r.Context(), s.db, accountFrom(r.Context()).ID)
	if err != nil {
		return nil, err
	}
	return &tokensPage{layout: layout{Title: "API tokens"}, Tokens: list, Scope: catalog.ScopeRead, Expiry: "90",
		Expiries: catalog.TokenExpiries, Now: time.Now()}, nil
}

// handleTokens lists the account's API tokens, with the form for a new one.
func (s *Server) handleTokens() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.tokensPage(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if r.URL.Query().Get("revoked") != "" {
			p.Flash = "Token revoked. Requests with it now get 401."
		}
		s.render(w, r, http.StatusOK, "tokens", p)
	}
}

// handleTokenCreate makes a token and shows its secret once: only its hash is kept.
func (s *Server) handleTokenCreate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := catalog.TokenInput{Name: r.PostFormValue("name"), Scope: r.PostFormValue("scope"), Expiry: r.PostFormValue("expiry")}
		_, secret, err := catalog.CreateToken(r.Context(), s.db, accountFrom(r.Context()).ID, in)
		var fe catalog.FieldErrors
		if err != nil && !errors.As(err, &fe) {
			s.fail(w, r, err)
			return
		}
		p, perr := s.tokensPage(r)
		if perr != nil {
			s.fail(w, r, perr)
			return
		}
		if err != nil {
			p.Name, p.Scope, p.Expiry = in.Name, in.Scope, in.Expiry
			p.Error, p.ScopeError, p.ExpiryError = fe["name"], fe["scope"], fe["expiry"]
			s.render(w, r, http.StatusBadRequest, "tokens", p)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		p.Created = secret
		s.render(w, r, http.StatusOK, "tokens", p)
	}
}

// handleTokenRevoke ends one of the account's tokens.
func (s *Server) handleTokenRevoke() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "tokenID"), 10, 64)
		if err != nil {
			s.fail(w, r, catalog.ErrNotFound)
			return
		}
		if err := catalog.RevokeToken(r.Context(), s.db, accountFrom(r.Context()).ID, id); err != nil {
			s.fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/account/tokens?revoked=1", http.StatusSeeOther)
	}
}
