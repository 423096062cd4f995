package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/mail/mailtest"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// newMailServer is the real handler whose email goes over SMTP (STARTTLS, with a password)
// to a real SMTP server on loopback, sent by River jobs worked in the test.
func newMailServer(t *testing.T) (*testServer, *mailtest.Server) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	if _, err := billing.MigrateJobs(ctx, db); err != nil {
		t.Fatal(err)
	}
	smtpd := mailtest.NewServer(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := mailtest.Service(t, db, smtpd, logger)
	return newTestServerOn(t, db, func(c *api.Config) { c.Mail = svc }, io.Discard), smtpd
}

// signUp signs up over HTTP with email, which stays unconfirmed, and logs in with login (the
// same address, in any case).
func (ts *testServer) signUp(t *testing.T, name, email, password, login string) user {
	t.Helper()
	expectStatus(t, ts.do(t, nil, "POST", "/signup", url.Values{"name": {name}, "email": {email}, "password": {password}}), 200, name+" signs up")
	return ts.login(t, login, password)
}

// showWithPlan makes a USD show owned by owner and saves its share plan on the plan page: 25%
// for the distributor, and for each of names (with emails) its percent.
func (ts *testServer) showWithPlan(t *testing.T, owner user, slug, title string, names, emails, percents []string) catalog.Show {
	t.Helper()
	show, err := catalog.CreateShow(context.Background(), ts.db, owner.ID, catalog.ShowInput{Slug: slug, Title: title, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"name": append([]string{"Fanseed (distributor)"}, names...), "email": append([]string{""}, emails...),
		"percent": append([]string{"25"}, percents...), "fee_policy": {"net"}, "source": {"all"}, "action": {"save"}}
	if resp := ts.do(t, &owner, "POST", fmt.Sprintf("/shows/%d/plan", show.ID), form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save the plan of %s: %d %s", title, resp.StatusCode, readBody(t, resp))
	}
	return show
}

// login logs in over HTTP and returns the session.
func (ts *testServer) login(t *testing.T, email, password string) user {
	t.Helper()
	resp := ts.do(t, nil, "POST", "/login", url.Values{"email": {email}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log in as %s: status %d", email, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "fanseed_session" && c.Value != "" {
			a, err := catalog.AccountBySession(context.Background(), ts.db, c.Value)
			if err != nil {
				t.Fatal(err)
			}
			return user{Account: a, token: c.Value}
		}
	}
	t.Fatalf("log in as %s: no session cookie", email)
	return user{}
}

// linkPath is the path and query of the link in m that goes to path.
func linkPath(t *testing.T, ts *testServer, m mailtest.Message, path string) string {
	t.Helper()
	for _, l := range m.Links() {
		if strings.HasPrefix(l, ts.URL+path+"?") {
			return strings.TrimPrefix(l, ts.URL)
		}
	}
	t.Fatalf("no %s link in %q:\n%s", path, m.Subject, m.Body)
	return ""
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("link %q has no token", link)
	}
	return u.Query().Get("token")
}

func expectStatus(t *testing.T, resp *http.Response, want int, what string) string {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d, want %d:\n%s", what, resp.StatusCode, want, body)
	}
	return body
}

// Sign-up emails a confirmation link: until it is followed the account logs in but can
// connect no Stripe account nor accept an invitation; the link works once. Signing up again
// with the address emails its owner instead, and the visitor sees the same page.
func TestSignupByEmail(t *testing.T) {
	t.Parallel()
	ts, smtpd := newMailServer(t)
	ctx := context.Background()
	form := url.Values{"name": {"Nina"}, "email": {"nina@example.com"}, "password": {"a long enough password"}}
	first := expectStatus(t, ts.do(t, nil, "POST", "/signup", form), 200, "sign up")
	m := smtpd.Wait(t, "nina@example.com", "Confirm your email address")
	verify := linkPath(t, ts, m, "/verify")

	nina := ts.login(t, "nina@example.com", "a long enough password")
	if nina.Verified() {
		t.Fatal("verified before following the link")
	}
	party, err := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Nina", "nina@example.com", &nina.ID)
	if err != nil {
		t.Fatal(err)
	}
	if body := expectStatus(t, ts.do(t, &nina, "GET", "/connect", nil), 200, "connect page"); !strings.Contains(body, "Confirm your email address first") {
		t.Fatalf("the connect page does not ask to confirm first:\n%s", body)
	}
	expectStatus(t, ts.do(t, &nina, "POST", "/connect", url.Values{"party": {strconv.FormatInt(party.ID, 10)}}), 403, "connect before confirming")
	expectStatus(t, ts.do(t, &nina, "POST", "/invitations/accept", url.Values{"token": {"x"}}), 403, "accept an invitation before confirming")

	// The same address again, in other case: the same page, and its owner is told by email.
	again := url.Values{"name": {"Mallory"}, "email": {"nina@example.com"}, "password": {"mallory's own password"}}
	if body := expectStatus(t, ts.do(t, nil, "POST", "/signup", again), 200, "sign up again"); body != first {
		t.Fatalf("sign-up with a taken address answered differently:\n%s", body)
	}
	if m := smtpd.Wait(t, "nina@example.com", "You already have a Fanseed account"); !strings.Contains(m.Body, "/password/forgot") {
		t.Fatalf("the owner is not told how to reset:\n%s", m.Body)
	}

	// Following the link: a page with a button (a mail scanner's GET confirms nothing), then done.
	page := expectStatus(t, ts.do(t, nil, "GET", verify, nil), 200, "open the link")
	if !strings.Contains(page, `action="/verify"`) {
		t.Fatalf("no confirm button:\n%s", page)
	}
	if a, _ := catalog.FindAccountByID(ctx, ts.db, nina.ID); a.Verified() {
		t.Fatal("opening the link confirmed the address")
	}
	expectStatus(t, ts.do(t, &nina, "POST", "/verify", url.Values{"token": {tokenOf(t, verify)}}), 200, "confirm")
	if a, _ := catalog.FindAccountByID(ctx, ts.db, nina.ID); !a.Verified() {
		t.Fatal("not verified after following the link")
	}
	expectStatus(t, ts.do(t, nil, "POST", "/verify", url.Values{"token": {tokenOf(t, verify)}}), 410, "the link a second time")
	expectStatus(t, ts.do(t, nil, "GET", verify, nil), 410, "opening a used link")
	if resp := ts.do(t, &nina, "POST", "/connect", url.Values{"party": {strconv.FormatInt(party.ID, 10)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("connect once confirmed: status %d", resp.StatusCode)
	}
}

// The takeover the invitations close: a creator names collab@example.com in a share plan;
// someone else signs up with COLLAB@example.com and names that address in a plan of their own.
// They are not linked to the collaborator's party: no statement, no Stripe account, no payout.
// The party is linked only when the person behind the address accepts the emailed invitation
// (here after taking back the account through a password reset), and the creator sees it.
func TestPartyTakeoverRefused(t *testing.T) {
	t.Parallel()
	ts, smtpd := newMailServer(t)
	ctx := context.Background()
	ann := ts.newUser(t, "ann@example.com", catalog.RoleCreator)
	show := ts.showWithPlan(t, ann, "anns", "Ann's Show", []string{"Ann", "Cole", "Dana"}, []string{"ann@example.com", "collab@example.com", "dana@example.com"}, []string{"50", "15", "10"})
	invitation := smtpd.Wait(t, "collab@example.com", "invites you to take a share of Ann's Show")
	inviteLink := linkPath(t, ts, invitation, "/invitations/accept")
	var cole billing.Party
	if err := ts.db.QueryRow(ctx, `SELECT id FROM parties WHERE email = 'collab@example.com'`).Scan(&cole.ID); err != nil {
		t.Fatal(err)
	}
	state := func(name, email string) string {
		t.Helper()
		body := readBody(t, ts.do(t, &ann, "GET", fmt.Sprintf("/shows/%d/plan", show.ID), nil))
		m := regexp.MustCompile(`<td>` + name + `</td><td>` + email + `</td><td class="state">([a-z ]+)</td>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s's state is not on the plan page:\n%s", name, body)
		}
		return m[1]
	}
	if got := state("Cole", "collab@example.com"); got != "invited" {
		t.Fatalf("Cole is %q before accepting, want invited", got)
	}

	// Mallory signs up with the collaborator's address in capitals and names it in her plan.
	mallory := ts.signUp(t, "Mallory", "COLLAB@example.com", "mallory's password", "COLLAB@example.com")
	ts.showWithPlan(t, mallory, "mallorys", "Mallory's", []string{"Mallory"}, []string{"COLLAB@example.com"}, []string{"75"})
	id := strconv.FormatInt(cole.ID, 10)
	assertNotLinked := func(who string, u user) {
		t.Helper()
		p, err := billing.FindParty(ctx, ts.db, cole.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.AccountID != nil {
			t.Fatalf("%s: the collaborator's party is linked to account %d", who, *p.AccountID)
		}
		if body := readBody(t, ts.do(t, &u, "GET", "/statements", nil)); strings.Contains(body, "/statements/"+id) {
			t.Fatalf("%s: the collaborator's party is among the statements:\n%s", who, body)
		}
		expectStatus(t, ts.do(t, &u, "GET", "/statements/"+id, nil), 403, who+" reads the collaborator's statement")
		expectStatus(t, ts.do(t, &u, "GET", "/api/v1/statements/"+id, nil), 403, who+" reads it through the API")
		if body := readBody(t, ts.do(t, &u, "GET", "/connect", nil)); strings.Contains(body, `value="`+id+`"`) {
			t.Fatalf("%s: the collaborator's party can be connected:\n%s", who, body)
		}
		if resp := ts.do(t, &u, "POST", "/connect", url.Values{"party": {id}}); resp.StatusCode != 403 && resp.StatusCode != 404 {
			t.Fatalf("%s: connecting the collaborator's party answered %d", who, resp.StatusCode)
		}
	}
	assertNotLinked("Mallory", mallory)

	// Even confirmed, with the invitation forwarded to her, an account with another address
	// cannot accept it.
	eve := ts.newUser(t, "eve@example.com", catalog.RoleCreator)
	if body := readBody(t, ts.do(t, &eve, "GET", inviteLink, nil)); !strings.Contains(body, "this invitation is for collab@example.com") {
		t.Fatalf("the invitation page does not say whose it is:\n%s", body)
	}
	expectStatus(t, ts.do(t, &eve, "POST", "/invitations/accept", url.Values{"token": {tokenOf(t, inviteLink)}}), 403, "Eve accepts")
	assertNotLinked("Eve", eve)
	expectStatus(t, ts.do(t, &mallory, "POST", "/invitations/accept", url.Values{"token": {tokenOf(t, inviteLink)}}), 403, "Mallory accepts unconfirmed")
	assertNotLinked("Mallory", mallory)

	// The person behind the address takes the account back: a password reset ends Mallory's
	// sessions. Once the address is confirmed, the account is the party's (the verified owner
	// of the address, who named it in a plan of their own).
	expectStatus(t, ts.do(t, nil, "POST", "/password/forgot", url.Values{"email": {"collab@example.com"}}), 200, "forgot")
	reset := linkPath(t, ts, smtpd.Wait(t, "COLLAB@example.com", "Set a new Fanseed password"), "/password/reset")
	expectStatus(t, ts.do(t, nil, "POST", "/password/reset", url.Values{"token": {tokenOf(t, reset)}, "password": {"cole's new password"}}), 200, "reset")
	if resp := ts.do(t, &mallory, "GET", "/dashboard", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Mallory's session still works after the reset: %d", resp.StatusCode)
	}
	coleUser := ts.login(t, "collab@example.com", "cole's new password")
	assertNotLinked("Cole before confirming", coleUser)
	verify := linkPath(t, ts, smtpd.Wait(t, "COLLAB@example.com", "Confirm your email address"), "/verify")
	expectStatus(t, ts.do(t, &coleUser, "POST", "/verify", url.Values{"token": {tokenOf(t, verify)}}), 200, "confirm")
	if p, _ := billing.FindParty(ctx, ts.db, cole.ID); p.AccountID == nil || *p.AccountID != coleUser.ID {
		t.Fatalf("party account %v, want %d", p.AccountID, coleUser.ID)
	}
	expectStatus(t, ts.do(t, &coleUser, "GET", "/statements/"+id, nil), 200, "Cole reads his statement")
	if got := state("Cole", "collab@example.com"); got != "accepted" {
		t.Fatalf("Cole is %q once linked, want accepted", got)
	}
	expectStatus(t, ts.do(t, &coleUser, "GET", inviteLink, nil), 410, "the invitation of a linked party")

	// Dana signs up, confirms and accepts her invitation: her party is linked, once.
	danaLink := linkPath(t, ts, smtpd.Wait(t, "dana@example.com", "invites you"), "/invitations/accept")
	dana := ts.signUp(t, "Dana", "Dana@Example.com", "dana's password!", "dana@example.com")
	if body := readBody(t, ts.do(t, &dana, "GET", danaLink, nil)); !strings.Contains(body, "Confirm your address first") {
		t.Fatalf("the invitation page does not ask an unconfirmed account to confirm:\n%s", body)
	}
	dverify := linkPath(t, ts, smtpd.Wait(t, "Dana@Example.com", "Confirm"), "/verify")
	expectStatus(t, ts.do(t, &dana, "POST", "/verify", url.Values{"token": {tokenOf(t, dverify)}}), 200, "Dana confirms")
	dana = ts.login(t, "dana@example.com", "dana's password!")
	if body := readBody(t, ts.do(t, &dana, "GET", danaLink, nil)); !strings.Contains(body, "Accept as Dana@Example.com") {
		t.Fatalf("no accept button for the invited address:\n%s", body)
	}
	if got := state("Dana", "dana@example.com"); got != "invited" {
		t.Fatalf("Dana is %q before accepting, want invited", got)
	}
	if resp := ts.do(t, &dana, "POST", "/invitations/accept", url.Values{"token": {tokenOf(t, danaLink)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("accept: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var danaParty int64
	ts.db.QueryRow(ctx, `SELECT id FROM parties WHERE email = 'dana@example.com'`).Scan(&danaParty)
	if p, _ := billing.FindParty(ctx, ts.db, danaParty); p.AccountID == nil || *p.AccountID != dana.ID {
		t.Fatalf("Dana's party account %v, want %d", p.AccountID, dana.ID)
	}
	if got := state("Dana", "dana@example.com"); got != "accepted" {
		t.Fatalf("Dana is %q after accepting, want accepted", got)
	}
	expectStatus(t, ts.do(t, &dana, "GET", fmt.Sprintf("/statements/%d", danaParty), nil), 200, "Dana reads her statement")
	expectStatus(t, ts.do(t, &dana, "POST", "/invitations/accept", url.Values{"token": {tokenOf(t, danaLink)}}), 410, "accept twice")
}

// A creator who names themself before confirming their address is linked to their creator
// party when they confirm it, and not before.
func TestOwnerLinkedOnceVerified(t *testing.T) {
	t.Parallel()
	ts, smtpd := newMailServer(t)
	ctx := context.Background()
	ola := ts.signUp(t, "Ola", "ola@example.com", "a long enough password", "ola@example.com")
	ts.showWithPlan(t, ola, "olas", "Ola's", []string{"Ola"}, []string{"Ola@Example.com"}, []string{"75"})
	var linked *int64
	if err := ts.db.QueryRow(ctx, `SELECT account_id FROM parties WHERE lower(email) = 'ola@example.com'`).Scan(&linked); err != nil {
		t.Fatal(err)
	}
	if linked != nil {
		t.Fatal("an unconfirmed account was linked to its party")
	}
	verify := linkPath(t, ts, smtpd.Wait(t, "ola@example.com", "Confirm"), "/verify")
	expectStatus(t, ts.do(t, &ola, "POST", "/verify", url.Values{"token": {tokenOf(t, verify)}}), 200, "confirm")
	if err := ts.db.QueryRow(ctx, `SELECT account_id FROM parties WHERE lower(email) = 'ola@example.com'`).Scan(&linked); err != nil {
		t.Fatal(err)
	}
	if linked == nil || *linked != ola.ID {
		t.Fatalf("after confirming, party account %v, want %d", linked, ola.ID)
	}
}

// Password reset: the link works once, not after its hour, and ends every session; a wrong or
// short password is refused with the field named. The account page changes the password (the
// current one required; other sessions end), lists the sessions and logs out everywhere.
func TestPasswordResetAndSessions(t *testing.T) {
	t.Parallel()
	ts, smtpd := newMailServer(t)
	ctx := context.Background()
	ts.newUser(t, "lee@example.com", catalog.RoleCreator)
	phone := ts.login(t, "lee@example.com", "correct horse battery")
	laptop := ts.login(t, "lee@example.com", "correct horse battery")

	// An address with no account gets the same answer, and no mail.
	unknown := expectStatus(t, ts.do(t, nil, "POST", "/password/forgot", url.Values{"email": {"nobody@example.com"}}), 200, "forgot, unknown")
	known := expectStatus(t, ts.do(t, nil, "POST", "/password/forgot", url.Values{"email": {"lee@example.com"}}), 200, "forgot")
	if strings.ReplaceAll(unknown, "nobody@example.com", "X") != strings.ReplaceAll(known, "lee@example.com", "X") {
		t.Fatal("the forgot-password page tells whether the address has an account")
	}
	expectStatus(t, ts.do(t, nil, "POST", "/password/forgot", url.Values{"email": {"nope"}}), 400, "forgot, not an address")
	link := linkPath(t, ts, smtpd.Wait(t, "lee@example.com", "Set a new Fanseed password"), "/password/reset")
	token := tokenOf(t, link)
	if body := expectStatus(t, ts.do(t, nil, "GET", link, nil), 200, "open reset link"); !strings.Contains(body, "For lee@example.com") {
		t.Fatalf("reset page:\n%s", body)
	}
	if body := expectStatus(t, ts.do(t, nil, "POST", "/password/reset", url.Values{"token": {token}, "password": {"short"}}), 400, "short"); !strings.Contains(body, "at least 10 characters") {
		t.Fatalf("short password page:\n%s", body)
	}
	expectStatus(t, ts.do(t, nil, "POST", "/password/reset", url.Values{"token": {token}, "password": {"a brand new password"}}), 200, "reset")
	for _, u := range []user{phone, laptop} {
		if resp := ts.do(t, &u, "GET", "/dashboard", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a session survived the reset: %d", resp.StatusCode)
		}
	}
	expectStatus(t, ts.do(t, nil, "POST", "/password/reset", url.Values{"token": {token}, "password": {"yet another password"}}), 410, "reset link twice")
	if _, err := catalog.Authenticate(ctx, ts.db, catalog.Login{Email: "lee@example.com", Password: "a brand new password", Addr: "192.0.2.9"}); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// An expired link.
	a, _ := catalog.FindAccountByEmail(ctx, ts.db, "lee@example.com")
	old, err := catalog.CreateAccountToken(ctx, ts.db, a, catalog.PurposeReset)
	if err != nil {
		t.Fatal(err)
	}
	ts.db.Exec(ctx, `UPDATE account_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE token_hash = $1`, catalog.HashLinkToken(old))
	expectStatus(t, ts.do(t, nil, "GET", "/password/reset?token="+url.QueryEscape(old), nil), 410, "expired link")
	expectStatus(t, ts.do(t, nil, "POST", "/password/reset", url.Values{"token": {old}, "password": {"expired link password"}}), 410, "expired link")

	// The account page: sessions, change, log out everywhere.
	one := ts.login(t, "lee@example.com", "a brand new password")
	two := ts.login(t, "lee@example.com", "a brand new password")
	page := expectStatus(t, ts.do(t, &one, "GET", "/account", nil), 200, "account page")
	if strings.Count(page, "/account/sessions/") != 2 || !strings.Contains(page, "this browser") { // two's end button, and log out everywhere
		t.Fatalf("sessions list:\n%s", page)
	}
	if body := expectStatus(t, ts.do(t, &one, "POST", "/account/password", url.Values{"current_password": {"wrong"}, "password": {"whatever long enough"}}), 400, "wrong current"); !strings.Contains(body, "Current password is wrong.") {
		t.Fatalf("wrong current password page:\n%s", body)
	}
	resp := ts.do(t, &one, "POST", "/account/password", url.Values{"current_password": {"a brand new password"}, "password": {"the third password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", resp.StatusCode)
	}
	var fresh user
	for _, c := range resp.Cookies() {
		if c.Name == "fanseed_session" {
			fresh = user{Account: one.Account, token: c.Value}
		}
	}
	for _, u := range []user{one, two} {
		if resp := ts.do(t, &u, "GET", "/dashboard", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("an old session survived the change: %d", resp.StatusCode)
		}
	}
	expectStatus(t, ts.do(t, &fresh, "GET", "/dashboard", nil), 200, "the browser that changed it")
	three := ts.login(t, "lee@example.com", "the third password")
	if resp := ts.do(t, &fresh, "POST", "/account/sessions/end", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log out everywhere: %d", resp.StatusCode)
	}
	for _, u := range []user{fresh, three} {
		if resp := ts.do(t, &u, "GET", "/dashboard", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("a session survived logging out everywhere: %d", resp.StatusCode)
		}
	}
}

// Offline (no SMTP server), mail stays in the outbox; the admin reads it there and the whole
// sign-up flow works from its link.
func TestOutboxOffline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	admin := ts.newUser(t, "admin@example.com", catalog.RoleAdmin)
	expectStatus(t, ts.do(t, nil, "POST", "/signup", url.Values{"name": {"Dev"}, "email": {"dev@example.com"},
		"password": {"a long enough password"}}), 200, "sign up")
	if body := expectStatus(t, ts.do(t, &admin, "GET", "/admin", nil), 200, "admin"); !strings.Contains(body, `href="/admin/outbox"`) {
		t.Fatal("the admin dashboard has no link to the outbox")
	}
	list := expectStatus(t, ts.do(t, &admin, "GET", "/admin/outbox", nil), 200, "outbox")
	m := regexp.MustCompile(`<td>dev@example.com</td>\s*<td><a href="(/admin/outbox/[0-9]+)">Confirm your email address for Fanseed</a></td><td>held</td>`).FindStringSubmatch(list)
	if m == nil || !strings.Contains(list, "No SMTP server is set") {
		t.Fatalf("the outbox does not list the held message:\n%s", list)
	}
	msg := expectStatus(t, ts.do(t, &admin, "GET", m[1], nil), 200, "message")
	link := regexp.MustCompile(`http://[^\s<]+/verify\?token=[A-Za-z0-9_-]+`).FindString(msg)
	if link == "" {
		t.Fatalf("no link in the held message:\n%s", msg)
	}
	path := link[strings.Index(link, "/verify"):]
	expectStatus(t, ts.do(t, nil, "POST", "/verify", url.Values{"token": {tokenOf(t, path)}}), 200, "confirm from the outbox")
	if a, _ := catalog.FindAccountByEmail(ctx, ts.db, "dev@example.com"); !a.Verified() {
		t.Fatal("not verified")
	}
}

// The takeover the other way round: someone signs up with an address first and names it in a
// plan of their own (so the party is a creator party of their show); when a real creator later
// names that address, the early account still reads nothing of what that show pays the party,
// and cannot connect it.
func TestPartyTakeoverRefusedFirstNamer(t *testing.T) {
	t.Parallel()
	ts, _ := newMailServer(t)
	ctx := context.Background()
	mallory := ts.signUp(t, "Mallory", "COLLAB@example.com", "mallory's password", "COLLAB@example.com")
	ts.showWithPlan(t, mallory, "mallorys", "Mallory's", []string{"Mallory"}, []string{"COLLAB@example.com"}, []string{"75"})
	ann := ts.newUser(t, "ann@example.com", catalog.RoleCreator)
	ts.showWithPlan(t, ann, "anns", "Ann's Show", []string{"Ann", "Cole"}, []string{"ann@example.com", "collab@example.com"}, []string{"50", "25"})
	var party int64
	if err := ts.db.QueryRow(ctx, `SELECT id FROM parties WHERE lower(email) = 'collab@example.com'`).Scan(&party); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(party, 10)
	if body := readBody(t, ts.do(t, &mallory, "GET", "/statements", nil)); strings.Contains(body, "/statements/"+id) {
		t.Fatalf("Mallory lists the party Ann's show pays:\n%s", body)
	}
	expectStatus(t, ts.do(t, &mallory, "GET", "/statements/"+id, nil), 403, "Mallory reads the party's statement")
	expectStatus(t, ts.do(t, &mallory, "GET", "/api/v1/statements/"+id, nil), 403, "through the API")
	expectStatus(t, ts.do(t, &mallory, "POST", "/connect", url.Values{"party": {id}}), 403, "Mallory connects it")
	if p, _ := billing.FindParty(ctx, ts.db, party); p.AccountID != nil {
		t.Fatalf("the party is linked to account %d", *p.AccountID)
	}
}
