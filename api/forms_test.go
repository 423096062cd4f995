package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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
		if _, err := catalog.Authenticate(context.Background(), ts.db, catalog.Login{Email: "ada@example.com", Password: "long enough password", Addr: "192.0.2.1"}); err != nil {
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

// Whatever next= holds, login redirects to a page of this site, as a browser reads the
// Location: browsers drop tabs and newlines, trim spaces and read a backslash as a slash.
func TestLoginNextStaysOnSite(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newUser(t, "next@example.com", catalog.RoleCreator)
	site, err := url.Parse(ts.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	browserReads := func(loc string) *url.URL {
		loc = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(loc)
		loc = strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
		u, err := site.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q does not parse: %v", loc, err)
		}
		return u
	}
	for _, tt := range []struct{ next, want string }{
		{"/shows/new", "/shows/new"},
		{"/statements/3?period=2026-11", "/statements/3?period=2026-11"},
		{"/\t/evil.test", "/dashboard"},
		{"/\n/evil.test", "/dashboard"},
		{"/\r\n/evil.test", "/dashboard"},
		{"\t//evil.test", "/dashboard"},
		{" //evil.test", "/dashboard"},
		{"//evil.test", "/dashboard"},
		{"/\\evil.test", "/dashboard"},
		{"\\\\evil.test", "/dashboard"},
		{"/%2F/evil.test", "/dashboard"},
		{"https://evil.test/", "/dashboard"},
		{"javascript:alert(1)", "/dashboard"},
		{"///evil.test", "/dashboard"},
		{"/\u0085/evil.test", "/dashboard"},
		{"evil.test", "/dashboard"},
	} {
		resp := ts.do(t, nil, "POST", "/login", url.Values{"email": {"next@example.com"}, "password": {"correct horse battery"}, "next": {tt.next}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("next=%q: status %d", tt.next, resp.StatusCode)
			continue
		}
		if u := browserReads(loc); u.Host != site.Host || u.Scheme != site.Scheme {
			t.Errorf("next=%q: redirected off the site to %q (a browser goes to %s)", tt.next, loc, u)
		}
		if loc != tt.want {
			t.Errorf("next=%q: redirected to %q, want %q", tt.next, loc, tt.want)
		}
	}
	// The login form does not carry an off-site next into its hidden field either.
	resp := ts.do(t, nil, "GET", "/login?next=/%09/evil.test", nil)
	if body := readBody(t, resp); !strings.Contains(body, `name="next" value=""`) {
		t.Errorf("GET /login?next=/%%09/evil.test kept the target in the form:\n%s", body)
	}
}

// Login throttling never locks the owner out. Strangers' failures make the next attempt on the
// account (or from the address) wait, longer after each failure; attempts made while waiting are
// refused and add nothing; and the browser the owner logged in from before still gets in with
// the right password.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	login := func(t *testing.T, ts *testServer, c *http.Client, email, password string) (*http.Response, string) {
		t.Helper()
		resp, err := c.PostForm(ts.URL+"/login", url.Values{"email": {email}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	const right = "correct horse battery"

	t.Run("PerAccount", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		ts.newUser(t, "owner@example.com", catalog.RoleCreator)
		owner, stranger := jarClient(t, false), jarClient(t, false)
		if resp, _ := login(t, ts, owner, "owner@example.com", right); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the owner's first login: status %d", resp.StatusCode)
		}
		for i := range catalog.LoginFreeFailuresPerEmail {
			if resp, _ := login(t, ts, stranger, "owner@example.com", fmt.Sprint("guess ", i)); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("guess %d: status %d, want 401", i, resp.StatusCode)
			}
		}
		// Now the next attempt on the account waits, even with the right password...
		first := int(catalog.LoginFirstDelay.Seconds())
		wait := func(resp *http.Response) int {
			n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil {
				return -1
			}
			return n
		}
		resp, body := login(t, ts, stranger, "owner@example.com", "one more guess")
		if resp.StatusCode != http.StatusTooManyRequests || wait(resp) > first || wait(resp) < first-5 ||
			!strings.Contains(body, "Too many failed attempts. Try again in ") {
			t.Fatalf("after %d failures: status %d, Retry-After %q, want 429 and a wait of %d s:\n%s", catalog.LoginFreeFailuresPerEmail,
				resp.StatusCode, resp.Header.Get("Retry-After"), first, body)
		}
		if resp, _ := login(t, ts, stranger, "Owner@example.com", right); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("the right password from a new browser while waiting: status %d, want 429", resp.StatusCode)
		}
		// ...but not from the browser the owner logged in from.
		for i := range 2 {
			if resp, _ := login(t, ts, owner, "owner@example.com", right); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("the owner's browser, login %d while strangers are throttled: status %d, want 303", i, resp.StatusCode)
			}
		}
		// Attempts refused while waiting add nothing: the wait does not grow.
		last := first
		for range 10 {
			resp, _ := login(t, ts, stranger, "owner@example.com", "hammering")
			if resp.StatusCode != http.StatusTooManyRequests || wait(resp) > last || wait(resp) <= 0 {
				t.Fatalf("hammering: status %d, Retry-After %q, want 429 and at most %d s", resp.StatusCode, resp.Header.Get("Retry-After"), last)
			}
			last = wait(resp)
		}
		// Once the wait is over (the clock moved on here), the account takes a guess again, and
		// the next wait is twice as long.
		if _, err := ts.db.Exec(context.Background(), `UPDATE login_throttle SET next_at = next_at - $1::interval,
			updated_at = updated_at - $1::interval`, fmt.Sprintf("%d seconds", first+1)); err != nil {
			t.Fatal(err)
		}
		if resp, _ := login(t, ts, stranger, "owner@example.com", "a later guess"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after the wait: status %d, want 401", resp.StatusCode)
		}
		resp, _ = login(t, ts, stranger, "owner@example.com", "another")
		if resp.StatusCode != http.StatusTooManyRequests || wait(resp) > 2*first || wait(resp) < 2*first-5 {
			t.Fatalf("after one more failure: status %d, Retry-After %q, want 429 and a wait of %d s", resp.StatusCode, resp.Header.Get("Retry-After"), 2*first)
		}
	})

	t.Run("PerAddress", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t)
		ts.newUser(t, "owner@example.com", catalog.RoleCreator)
		ts.newUser(t, "other@example.com", catalog.RoleCreator)
		owner, stranger := jarClient(t, false), jarClient(t, false)
		if resp, _ := login(t, ts, owner, "owner@example.com", right); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the owner's first login: status %d", resp.StatusCode)
		}
		// One address trying many accounts, each only once: the address is throttled.
		for i := range catalog.LoginFreeFailuresPerAddr {
			if resp, _ := login(t, ts, stranger, fmt.Sprintf("user%d@example.com", i), "guess"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("guess %d: status %d, want 401", i, resp.StatusCode)
			}
		}
		if resp, _ := login(t, ts, jarClient(t, false), "other@example.com", right); resp.StatusCode != http.StatusTooManyRequests ||
			resp.Header.Get("Retry-After") == "" {
			t.Errorf("a new browser at the throttled address: status %d, want 429 with Retry-After", resp.StatusCode)
		}
		if resp, _ := login(t, ts, owner, "owner@example.com", right); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("the owner's browser at the throttled address: status %d, want 303", resp.StatusCode)
		}
	})
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
