package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/fanseed/fanseed/catalog"
)

type signupPage struct {
	layout
	Form   catalog.SignUp
	Errors catalog.FieldErrors
}

type loginPage struct {
	layout
	Email, Next, Error string
}

type homePage struct {
	layout
	Shows []catalog.Show
}

// handleHome explains Fanseed to fans and creators and lists the shows publishing on it.
func (s *Server) handleHome() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		shows, err := catalog.ListPublishedShows(r.Context(), s.db, 50)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "home", &homePage{layout: layout{Title: "Publish over BitTorrent"}, Shows: shows})
	}
}

func (s *Server) handleSignupForm() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "signup", &signupPage{layout: layout{Title: "Sign up"}})
	}
}

type signupSentPage struct {
	layout
	Email string
}

// errEmailTaken is a sign-up with the address of an existing account: the visitor is told
// nothing different, the account's owner gets an email.
var errEmailTaken = errors.New("email taken")

// handleSignup creates a creator account and emails it a verification link. The answer is the
// same whether or not the address already has an account (whose owner is emailed instead), so
// sign-up tells nobody which addresses have accounts; the new account then logs in.
func (s *Server) handleSignup() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		in := catalog.SignUp{
			Email: r.PostFormValue("email"), Name: r.PostFormValue("name"),
			Password: r.PostFormValue("password"), Role: catalog.RoleCreator,
		}
		var fe catalog.FieldErrors
		if err := in.Validate(); errors.As(err, &fe) {
			in.Password = ""
			s.render(w, r, statusOf(err), "signup", &signupPage{layout: layout{Title: "Sign up"}, Form: in, Errors: fe})
			return
		}
		base := s.absoluteURL(r, "")
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			a, err := catalog.CreateAccount(ctx, tx, in)
			if errors.Is(err, catalog.ErrConflict) {
				return errEmailTaken
			}
			if err != nil {
				return err
			}
			token, err := catalog.CreateAccountToken(ctx, tx, a, catalog.PurposeVerify)
			if err != nil {
				return err
			}
			_, err = s.mail.Send(ctx, tx, verifyMessage(base, a.ID, a.Name, a.Email, token, fmt.Sprintf("verify:%d:signup", a.ID)))
			return err
		})
		if errors.Is(err, errEmailTaken) {
			var a catalog.Account
			if a, err = catalog.FindAccountByEmail(ctx, s.db, in.Email); err == nil {
				_, err = s.mail.Send(ctx, s.db, alreadyMessage(base, a.ID, a.Name, a.Email))
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.render(w, r, http.StatusOK, "signup_sent", &signupSentPage{layout: layout{Title: "Check your email"}, Email: in.Email})
	}
}

func (s *Server) handleLoginForm() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "login", &loginPage{layout: layout{Title: "Log in"}, Next: localPath(r.URL.Query().Get("next"))})
	}
}

func (s *Server) handleLogin() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		email, next := r.PostFormValue("email"), localPath(r.PostFormValue("next"))
		var device string
		if c, err := r.Cookie(deviceCookie); err == nil {
			device = c.Value
		}
		a, err := catalog.Authenticate(r.Context(), s.db, catalog.Login{Email: email, Password: r.PostFormValue("password"),
			Addr: clientAddr(r), Device: device})
		if err != nil {
			msg := "Wrong email or password."
			var te *catalog.ThrottledError
			switch {
			case errors.As(err, &te):
				secs := int64(math.Ceil(te.Wait.Seconds()))
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
				msg = "Too many failed attempts. Try again in " + waitText(secs) + "."
			case !errors.Is(err, catalog.ErrUnauthorized):
				s.fail(w, r, err)
				return
			}
			s.render(w, r, statusOf(err), "login", &loginPage{layout: layout{Title: "Log in"}, Email: email, Next: next, Error: msg})
			return
		}
		if err := s.startSession(w, r, a.ID); err != nil {
			s.fail(w, r, err)
			return
		}
		if next == "" {
			next = "/dashboard"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// deviceCookie marks a browser that logged in before: from it, the account's right password works
// however many failed attempts strangers made (see catalog.Authenticate). Only /login reads it.
const deviceCookie = "fanseed_device"

// waitText says how long to wait, in seconds or, from two minutes, in minutes.
func waitText(secs int64) string {
	switch {
	case secs == 1:
		return "1 second"
	case secs < 120:
		return strconv.FormatInt(secs, 10) + " seconds"
	default:
		return strconv.FormatInt((secs+59)/60, 10) + " minutes"
	}
}

func (s *Server) handleLogout() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			if err := catalog.DeleteSession(r.Context(), s.db, c.Value); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.clearSessionCookie(w)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// startSession logs the browser in, and remembers it as a device the account logs in from.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, accountID int64) error {
	token, err := catalog.StartSession(r.Context(), s.db, accountID, r.UserAgent())
	if err != nil {
		return err
	}
	var device string
	if c, err := r.Cookie(deviceCookie); err == nil {
		device = c.Value
	}
	if device, err = catalog.RememberDevice(r.Context(), s.db, accountID, device); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: deviceCookie, Value: device, Path: "/login", MaxAge: int(catalog.DeviceTTL.Seconds()),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode,
	})
	s.setSessionCookie(w, token)
	return nil
}

// localPath keeps a redirect target only if it is a path on this site. Browsers drop tabs and
// newlines inside a URL and read a backslash as a slash, so "/\t/evil.test" or "/\\evil.test"
// would leave the site: control characters are removed first, then the rest must parse as a
// bare path (no scheme, no host) that does not start with two slashes.
func localPath(p string) string {
	p = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, p)
	if strings.ContainsRune(p, '\\') {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/\\") {
		return ""
	}
	clean := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	return clean.String()
}
