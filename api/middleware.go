package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/fanseed/fanseed/catalog"
)

const sessionCookie = "fanseed_session"

type accountKey struct{}

// sessionUnknownKey holds the error that kept loadAccount from reading the session.
type sessionUnknownKey struct{}

func accountFrom(ctx context.Context) *catalog.Account {
	a, _ := ctx.Value(accountKey{}).(*catalog.Account)
	return a
}

// withoutAccount is ctx with no logged-in account, for a page rendered after logging out.
func withoutAccount(ctx context.Context) context.Context {
	return context.WithValue(ctx, accountKey{}, (*catalog.Account)(nil))
}

func requestID(r *http.Request) string { return middleware.GetReqID(r.Context()) }

// loadAccount puts the logged-in account, if any, in the request context.
func (s *Server) loadAccount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		a, err := catalog.AccountBySession(r.Context(), s.db, c.Value)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			s.clearSessionCookie(w)
		case isDatabaseDown(err):
			// Public pages still work from what they hold; pages behind a login answer 503.
			s.dbHealth.markDown(r.Context(), err)
			r = r.WithContext(context.WithValue(r.Context(), sessionUnknownKey{}, err))
		case err != nil:
			s.serverError(w, r, err)
			return
		default:
			r = r.WithContext(context.WithValue(r.Context(), accountKey{}, &a))
		}
		next.ServeHTTP(w, r)
	})
}

// requireAccount sends visitors who are not logged in to the login page.
func (s *Server) requireAccount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if accountFrom(r.Context()) == nil {
			if err, unknown := r.Context().Value(sessionUnknownKey{}).(error); unknown {
				s.unavailable(w, r, err)
				return
			}
			target := "/login?next=" + url.QueryEscape(r.URL.RequestURI())
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireRole refuses accounts without one of the roles.
func requireRole(s *Server, roles ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a := accountFrom(r.Context())
			if a == nil || !slices.Contains(roles, a.Role) {
				s.fail(w, r, errForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *Server) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", MaxAge: int(catalog.SessionTTL.Seconds()),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
}

// logRequests writes one JSON line per request, with the request id. Seedbox heartbeats that
// succeed, one per node every few seconds, are debug lines.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		// The tracker's answers and the nodes' heartbeats come by the thousand; they are logged
		// at debug level unless they fail (a tracker's refusals are failure reasons in a 200).
		level := slog.LevelInfo
		if route := routePattern(r); ww.Status() < 400 && (route == nodeHeartbeatRoute || route == "/announce" && ww.Status() != http.StatusSwitchingProtocols || route == "/scrape") {
			level = slog.LevelDebug
		}
		path := loggedPath(r)
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		s.log.LogAttrs(r.Context(), level, "request",
			slog.String("request_id", requestID(r)),
			slog.String("method", r.Method),
			slog.String("path", path),
			slog.String("route", routePattern(r)),
			slog.Int("status", ww.Status()),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", clientAddr(r)),
		)
	})
}

// secretParams are the route parameters that are secrets: links to pay, pledge or watch an
// overlay, a backer's passkey, a signature, a test checkout. A path holding one is logged as its
// route, so that a log reader cannot use it.
var secretParams = []string{"{token}", "{passkey}", "{sig}", "{session}"}

// loggedPath is the request's path as the log may hold it.
func loggedPath(r *http.Request) string {
	route := routePattern(r)
	for _, p := range secretParams {
		if strings.Contains(route, p) {
			return route
		}
	}
	return r.URL.Path
}

// recoverPanics turns a panic in a handler into a logged 500.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.serverError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

type tokenKey struct{}

// tokenFrom is the API token the request came with, nil for a session or no account.
func tokenFrom(ctx context.Context) *catalog.Token {
	t, _ := ctx.Value(tokenKey{}).(*catalog.Token)
	return t
}

// loadToken lets an API token stand for its account (Authorization: Bearer <token>), in place
// of any session. A wrong, revoked or expired token is 401, with the JSON API's error body;
// what the token's scope allows is checked by requireScope on each route.
func (s *Server) loadToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			s.apiError(w, r, fmt.Errorf("authorization scheme %q: %w", scheme, catalog.ErrUnauthorized))
			return
		}
		a, t, err := catalog.AccountByToken(r.Context(), s.db, strings.TrimSpace(token))
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), accountKey{}, &a), tokenKey{}, &t)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireScope refuses a token whose scope does not cover scope, with a 403 naming the scope
// needed. A session (the portal's own pages) is its account's whole self.
func requireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t := tokenFrom(r.Context()); t != nil && !t.Allows(scope) {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="fanseed", error="insufficient_scope", scope=%q`, scope))
				apiErrorBody(w, http.StatusForbidden, "insufficient_scope", fmt.Sprintf(
					"This needs a token with the %s scope; this token's scope is %s. Create a %s token at /account/tokens.", scope, t.Scope, scope), "")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rejectBadText refuses text that PostgreSQL cannot store (invalid UTF-8 or NUL bytes) in the
// path, the query or a urlencoded form, with a 400 before any handler sees it.
func (s *Server) rejectBadText(next http.Handler) http.Handler {
	bad := func(v string) bool { return !utf8.ValidString(v) || strings.ContainsRune(v, 0) }
	badValues := func(vs url.Values) bool {
		for k, list := range vs {
			if bad(k) {
				return true
			}
			for _, v := range list {
				if bad(v) {
					return true
				}
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused := bad(r.URL.Path)
		// The tracker's queries carry binary infohashes and peer ids by protocol (BEP 3).
		binary := r.URL.Path == "/announce" || r.URL.Path == "/scrape" ||
			(strings.HasPrefix(r.URL.Path, "/early/") && strings.HasSuffix(r.URL.Path, "/announce")) // the private tracker
		if !refused && !binary {
			q, err := url.ParseQuery(r.URL.RawQuery)
			refused = err == nil && badValues(q)
		}
		if !refused && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			if err := r.ParseForm(); err == nil {
				refused = badValues(r.PostForm)
			}
		}
		if refused {
			s.renderError(w, r, http.StatusBadRequest, "Bad Request", "Text must be valid UTF-8 without NUL characters.")
			return
		}
		next.ServeHTTP(w, r)
	})
}
