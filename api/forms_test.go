package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/catalog"
)

func TestSignup(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	form := url.Values{"name": {"Ada"}, "email": {"ada@example.com"}, "password": {"long enough password"}}

	sessionCookie := func(resp *http.Response) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == "fanseed_session" && c.Value != "" {
				return c
			}
		}
		return nil
	}
	var first string
	t.Run("OK", func(t *testing.T) {
		resp := ts.do(t, nil, "POST", "/signup", form)
		first = readBody(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(first, "Check your email") || sessionCookie(resp) != nil {
			t.Fatalf("status %d, cookie %v; want 200 asking to check the inbox, and no session:\n%s", resp.StatusCode, sessionCookie(resp), first)
		}
		if _, err := catalog.FindAccountByEmail(context.Background(), ts.db, "ada@example.com"); err != nil {
			t.Fatalf("no account made: %v", err)
		}
	})
	// Signing up with an address that has an account answers exactly as a new sign-up does,
	// and changes nothing (the owner of the address is emailed instead: see TestSignupByEmail).
	t.Run("EmailTakenLooksTheSame", func(t *testing.T) {
		dup := url.Values{"name": {"Other Ada"}, "email": {"ada@example.com"}, "password": {"another long password"}}
		resp := ts.do(t, nil, "POST", "/signup", dup)
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusOK || body != first || sessionCookie(resp) != nil {
			t.Fatalf("status %d, cookie %v; want the same page as a new sign-up:\n%s", resp.StatusCode, sessionCookie(resp), body)
		}
		if _, err := catalog.Authenticate(context.Background(), ts.db, "ada@example.com", "long enough password", "192.0.2.1"); err != nil {
			t.Fatalf("the first password no longer works: %v", err)
		}
	})
	t.Run("ErrFields", func(t *testing.T) {
		bad := url.Values{"name": {strings.Repeat("x", 101)}, "email": {"not-an-email"}, "password": {"short"}}
		resp := ts.do(t, nil, "POST", "/signup", bad)
		body := readBody(t, resp)
		for _, msg := range []string{"Name must be at most 100", "Email must look like", "at least 10 characters"} {
			if !strings.Contains(body, msg) {
				t.Errorf("missing %q", msg)
			}
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser(t, "lee@example.com", catalog.RoleCreator)

	resp := ts.do(t, nil, "POST", "/login", url.Values{"email": {"lee@example.com"}, "password": {"wrong password"}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password") {
		t.Fatalf("wrong password: status %d", resp.StatusCode)
	}
	resp = ts.do(t, nil, "POST", "/login", url.Values{"email": {"Lee@Example.com"}, "password": {"correct horse battery"}, "next": {"/shows/new"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/shows/new" {
		t.Fatalf("login: status %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An off-site next is ignored.
	resp = ts.do(t, nil, "POST", "/login", url.Values{"email": {"lee@example.com"}, "password": {"correct horse battery"}, "next": {"//evil.example/"}})
	if resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("login with off-site next redirected to %q", resp.Header.Get("Location"))
	}

	resp = ts.do(t, &u, "POST", "/logout", url.Values{})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	if resp := ts.do(t, &u, "GET", "/dashboard", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dashboard after logout: status %d, want a redirect to log in", resp.StatusCode)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser(t, "target@example.com", catalog.RoleCreator)
	for i := range catalog.MaxFailuresPerEmail {
		resp := ts.do(t, nil, "POST", "/login", url.Values{"email": {"target@example.com"}, "password": {fmt.Sprint("guess", i)}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i, resp.StatusCode)
		}
	}
	// Now even the right password is refused for this account.
	resp := ts.do(t, nil, "POST", "/login", url.Values{"email": {"target@example.com"}, "password": {"correct horse battery"}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") {
		t.Fatalf("after %d failures: status %d, want 429", catalog.MaxFailuresPerEmail, resp.StatusCode)
	}
}

func TestShowForm(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	u := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	if _, err := catalog.CreateShow(ctx, ts.db, u.ID, catalog.ShowInput{Slug: "taken", Title: "Taken", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		msg    string
	}{
		{"ErrSlugTaken", url.Values{"slug": {"taken"}, "title": {"Mine"}, "currency": {"USD"}}, 409, "Another show already uses this slug"},
		{"ErrNegativeGoal", url.Values{"slug": {"neg"}, "title": {"Neg"}, "currency": {"USD"}, "funding_goal": {"-5"}}, 400, "cannot be negative"},
		{"ErrGoalDecimals", url.Values{"slug": {"yen"}, "title": {"Yen"}, "currency": {"JPY"}, "funding_goal": {"10.50"}}, 400, "Funding goal must be an amount in JPY"},
		{"ErrUnknownCurrency", url.Values{"slug": {"cur"}, "title": {"Cur"}, "currency": {"XYZ"}}, 400, "is not one Fanseed accepts"},
		{"ErrTitleTooLong", url.Values{"slug": {"long"}, "title": {strings.Repeat("t", 201)}, "currency": {"USD"}}, 400, "at most 200 characters"},
		{"ErrBadSlug", url.Values{"slug": {"Bad Slug!"}, "title": {"Bad"}, "currency": {"USD"}}, 400, "Slug may hold only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(t, &u, "POST", "/shows", tt.form)
			body := readBody(t, resp)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.msg) {
				t.Fatalf("status %d, want %d with %q", resp.StatusCode, tt.status, tt.msg)
			}
			if title := tt.form.Get("title"); len(title) < 100 && !strings.Contains(body, `value="`+title+`"`) {
				t.Errorf("the typed title %q was not kept", title)
			}
		})
	}
	shows, err := catalog.ListShows(ctx, ts.db, u.Account)
	if err != nil || len(shows) != 1 {
		t.Fatalf("after bad input: %d shows, %v; want only the first", len(shows), err)
	}

	t.Run("OK", func(t *testing.T) {
		resp := ts.do(t, &u, "POST", "/shows", url.Values{"slug": {"good-show"}, "title": {"Good"}, "currency": {"jpy"}, "funding_goal": {"50000"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d", resp.StatusCode)
		}
		s, err := catalog.FindShowBySlug(ctx, ts.db, "good-show")
		if err != nil || s.Currency != "JPY" || s.FundingGoal != 50000 {
			t.Fatalf("stored %+v, %v", s, err)
		}
	})
}

// Text PostgreSQL cannot store is a 400, not a 500, wherever it comes in.
func TestBadTextRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	u := ts.newUser(t, "text@example.com", catalog.RoleCreator)
	for _, tt := range []struct {
		u      *user
		method string
		path   string
		form   url.Values
	}{
		{nil, "POST", "/signup", url.Values{"name": {"A\x00B"}, "email": {"nul@example.com"}, "password": {"a long enough password"}}},
		{nil, "POST", "/login", url.Values{"email": {"a\x00@example.com"}, "password": {"x"}}},
		{&u, "POST", "/shows", url.Values{"title": {"T"}, "slug": {"s"}, "currency": {"USD"}, "description": {"\xff\xfe"}}},
		{nil, "GET", "/s/%00", nil},
		{nil, "GET", "/s/x?q=%ff", nil},
	} {
		resp := ts.do(t, tt.u, tt.method, tt.path, tt.form)
		if body := readBody(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "valid UTF-8") {
			t.Errorf("%s %s: status %d, want 400 naming the problem", tt.method, tt.path, resp.StatusCode)
		}
	}
	if _, err := catalog.FindShowBySlug(context.Background(), ts.db, "s"); err == nil {
		t.Error("a show was stored from a refused form")
	}
}
