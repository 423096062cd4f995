package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
)

// TestAuthorizationWalk walks every route as each kind of visitor and checks the status each
// gets: owners and admins manage a show, other creators cannot even see it (404), partners
// only read (403), and anonymous visitors are sent to log in.
func TestAuthorizationWalk(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	owner := ts.newUser(t, "owner@example.com", catalog.RoleCreator)
	other := ts.newUser(t, "other@example.com", catalog.RoleCreator)
	partner := ts.newUser(t, "partner@example.com", catalog.RolePartner)
	admin := ts.newUser(t, "admin@example.com", catalog.RoleAdmin)
	show, err := catalog.CreateShow(ctx, ts.db, owner.ID, catalog.ShowInput{Slug: "owned", Title: "Owned", Currency: "USD", FundingGoal: "100"})
	if err != nil {
		t.Fatal(err)
	}
	sp := fmt.Sprintf("/shows/%d", show.ID)
	ep, err := catalog.CreateEpisode(ctx, ts.db, show.ID, catalog.EpisodeInput{Title: "Pilot"})
	if err != nil {
		t.Fatal(err)
	}
	epPath := fmt.Sprintf("%s/episodes/%d", sp, ep.ID)
	gone, err := catalog.CreateEpisode(ctx, ts.db, show.ID, catalog.EpisodeInput{Title: "Gone"})
	if err != nil {
		t.Fatal(err)
	}
	gonePath := fmt.Sprintf("%s/episodes/%d", sp, gone.ID)
	// The owner's creator party (linked to the account), for the statement routes.
	ownerParty, err := billing.EnsureParty(ctx, ts.db, billing.PartyCreator, "Owner", "owner@example.com", &owner.ID)
	if err != nil {
		t.Fatal(err)
	}
	stp := fmt.Sprintf("/statements/%d", ownerParty.ID)
	apiStp := fmt.Sprintf("/api/v1/statements/%d", ownerParty.ID)
	editForm := url.Values{"slug": {"owned"}, "title": {"Owned"}, "currency": {"USD"}, "funding_goal": {"100"}, "language": {"en"}}
	planForm := url.Values{"name": {"Fanseed (distributor)", "Owner"}, "email": {"", "owner@example.com"},
		"percent": {"25", "75"}, "fee_policy": {"net"}, "source": {"all"}, "action": {"preview"}}

	var outboxID int64
	if err := ts.db.QueryRow(ctx, `INSERT INTO outbox (key, to_address, subject, body, status)
		VALUES ('walk', 'someone@example.com', 'Hello', 'a link', 'held') RETURNING id`).Scan(&outboxID); err != nil {
		t.Fatal(err)
	}
	const S = http.StatusSeeOther
	type want struct{ anon, owner, other, partner, admin int }
	routes := []struct {
		method, path string
		form         url.Values
		want         want
	}{
		{"GET", "/", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/healthz", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/readyz", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/metrics", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/static/app.css", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/signup", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/login", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/dashboard", nil, want{S, 200, 200, 200, 200}},
		{"GET", "/shows/new", nil, want{S, 200, 200, 403, 200}},
		{"POST", "/shows", url.Values{}, want{S, 400, 400, 403, 400}},
		{"GET", sp, nil, want{S, 200, 404, 403, 200}},
		{"GET", sp + "/edit", nil, want{S, 200, 404, 403, 200}},
		{"POST", sp + "/edit", editForm, want{S, S, 404, 403, S}},
		{"GET", sp + "/plan", nil, want{S, 200, 404, 403, 200}},
		{"POST", sp + "/plan", planForm, want{S, 200, 404, 403, 200}},
		{"GET", sp + "/plan/preview?percent=25&percent=75", nil, want{S, 200, 404, 403, 200}},
		{"POST", sp + "/episodes", url.Values{"title": {""}}, want{S, 400, 404, 403, 400}},
		{"GET", epPath, nil, want{S, 200, 404, 403, 200}},
		{"GET", epPath + "/status", nil, want{S, 200, 404, 403, 200}},
		{"GET", fmt.Sprintf("%s/episodes/%d", sp, 999999), nil, want{S, 404, 404, 403, 404}},
		{"POST", gonePath + "/delete", url.Values{}, want{S, S, 404, 403, 404}}, // the owner deleted it first
		{"GET", "/announce", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/scrape", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/seed/" + strings.Repeat("ab", 20) + "/x.mp4", nil, want{404, 404, 404, 404, 404}},
		{"GET", "/t/" + strings.Repeat("ab", 20) + ".torrent", nil, want{404, 404, 404, 404, 404}},
		{"POST", "/api/uploads/", url.Values{}, want{401, 412, 412, 403, 412}}, // 412: no Tus-Resumable header
		{"HEAD", "/api/uploads/" + strings.Repeat("0", 32), nil, want{401, 404, 404, 403, 404}},
		{"GET", "/shows/999999", nil, want{S, 404, 404, 403, 404}},
		{"GET", "/shows/abc", nil, want{S, 404, 404, 403, 404}},
		{"GET", "/admin", nil, want{S, 403, 403, 403, 200}},
		{"GET", "/admin/fleet", nil, want{S, 403, 403, 403, 200}},
		{"POST", "/admin/fleet/nodes/999999/drain", url.Values{}, want{S, 403, 403, 403, 404}},
		{"POST", "/admin/fleet/nodes/999999/revoke", url.Values{}, want{S, 403, 403, 403, 404}},
		{"POST", "/admin/fleet/nodes/999999/readmit", url.Values{}, want{S, 403, 403, 403, 404}},
		{"POST", "/api/nodes", url.Values{}, want{401, 401, 401, 401, 401}},
		{"POST", "/api/nodes/1/heartbeat", url.Values{}, want{401, 401, 401, 401, 401}},
		{"GET", "/s/owned/donate", nil, want{200, 200, 200, 200, 200}},
		{"POST", "/s/owned/donate", url.Values{"amount": {"1"}}, want{400, 400, 400, 400, 400}},
		{"GET", "/s/owned/donate/thanks", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/s/owned/donate/cancelled", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/s/nobody/donate", nil, want{404, 404, 404, 404, 404}},
		{"GET", "/checkout/test/cs_test_fanseed_nope", nil, want{404, 404, 404, 404, 404}},
		{"POST", "/checkout/test/cs_test_fanseed_nope", url.Values{"action": {"pay"}}, want{404, 404, 404, 404, 404}},
		{"GET", "/sponsor/sp_nope", nil, want{404, 404, 404, 404, 404}},
		{"POST", "/sponsor/sp_nope", url.Values{}, want{404, 404, 404, 404, 404}},
		{"POST", "/webhooks/stripe", url.Values{}, want{400, 400, 400, 400, 400}},
		{"GET", sp + "/sponsorships", nil, want{S, 200, 404, 403, 200}},
		{"POST", sp + "/sponsorships", url.Values{"sponsor_name": {""}}, want{S, 400, 404, 403, 400}},
		{"POST", sp + "/sponsorships/999999/cancel", url.Values{}, want{S, 404, 404, 403, 404}},
		{"GET", "/connect", nil, want{S, 200, 200, 200, 200}},
		{"POST", "/connect", url.Values{"party": {"999999"}}, want{S, 404, 404, 404, 404}},
		{"POST", "/connect/threshold", url.Values{"party": {"999999"}, "currency": {"USD"}, "amount": {"5"}}, want{S, 404, 404, 404, 404}},
		{"GET", "/admin/payouts", nil, want{S, 403, 403, 403, 200}},
		{"GET", "/admin/events", nil, want{S, 403, 403, 403, 200}},
		{"POST", "/admin/events/retry", url.Values{}, want{S, 403, 403, 403, 400}},
		{"POST", "/admin/payouts", url.Values{"period": {"soon"}}, want{S, 403, 403, 403, 400}},
		{"GET", "/admin/refunds", nil, want{S, 403, 403, 403, 200}},
		{"POST", "/admin/refunds", url.Values{"charge": {"ch_none"}, "amount": {"1"}}, want{S, 403, 403, 403, 400}},
		{"GET", "/s/owned", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/s/owned/embed", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/s/owned/torrents.rss", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/s/owned/podcast.rss", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/s/owned/artwork", nil, want{404, 404, 404, 404, 404}}, // none uploaded
		{"GET", "/s/owned/e/999999", nil, want{404, 404, 404, 404, 404}},
		{"GET", "/s/missing", nil, want{404, 404, 404, 404, 404}},
		{"GET", sp + "/dashboard", nil, want{S, 200, 404, 403, 200}},
		{"GET", sp + "/dashboard/money.csv", nil, want{S, 200, 404, 403, 200}},
		{"POST", sp + "/artwork", url.Values{}, want{S, 400, 404, 403, 400}},
		{"GET", "/statements", nil, want{S, 200, 200, 200, 200}},
		{"GET", stp, nil, want{S, 200, 403, 403, 200}},
		{"GET", stp + ".csv?period=2026-01", nil, want{S, 200, 403, 403, 200}},
		{"GET", stp + ".json", nil, want{S, 200, 403, 403, 200}},
		{"GET", stp + "?from=2026-02-01&to=2026-01-01", nil, want{S, 400, 403, 403, 400}},
		{"GET", "/statements/999999", nil, want{S, 404, 404, 404, 404}},
		{"GET", "/account/tokens", nil, want{S, 200, 200, 200, 200}},
		{"POST", "/account/tokens", url.Values{"name": {""}}, want{S, 400, 400, 400, 400}},
		{"POST", "/account/tokens/999999/revoke", url.Values{}, want{S, 404, 404, 404, 404}},
		{"GET", "/api/v1/openapi.json", nil, want{200, 200, 200, 200, 200}},
		{"GET", "/api/v1/shows", nil, want{401, 200, 200, 200, 200}},
		{"GET", "/api/v1" + sp, nil, want{401, 200, 404, 404, 200}},
		{"GET", "/api/v1" + sp + "/episodes", nil, want{401, 200, 404, 404, 200}},
		{"GET", "/api/v1/donations", nil, want{401, 200, 200, 200, 200}},
		{"GET", "/api/v1/statements", nil, want{401, 200, 200, 200, 200}},
		{"GET", apiStp, nil, want{401, 200, 403, 403, 200}},
		{"GET", apiStp + "?period=2026-13", nil, want{401, 400, 403, 403, 400}},
		// API writes with a session: a creator's own shows only (an empty body is then 400).
		{"POST", "/api/v1/shows", url.Values{}, want{401, 400, 400, 403, 400}},
		{"PATCH", "/api/v1" + sp, url.Values{}, want{401, 400, 404, 403, 400}},
		{"POST", "/api/v1" + sp + "/episodes", url.Values{}, want{401, 400, 404, 403, 400}},
		{"PUT", "/api/v1" + sp + "/plan", url.Values{}, want{401, 400, 404, 403, 400}},
		{"DELETE", "/api/v1/shows", url.Values{}, want{405, 405, 405, 405, 405}},
		{"GET", "/api/v1/nothing", nil, want{404, 404, 404, 404, 404}},
		{"GET", "/no-such-page", nil, want{404, 404, 404, 404, 404}},
		{"GET", "/account", nil, want{S, 200, 200, 200, 200}},
		{"POST", "/account/password", url.Values{"current_password": {"wrong"}, "password": {"x"}}, want{S, 400, 400, 400, 400}},
		{"POST", "/account/verify", url.Values{}, want{S, S, S, S, S}}, // confirmed already: back to the account page
		{"POST", "/account/sessions/999999/end", url.Values{}, want{S, 404, 404, 404, 404}},
		{"GET", "/verify?token=nope", nil, want{410, 410, 410, 410, 410}},
		{"POST", "/verify", url.Values{"token": {"nope"}}, want{410, 410, 410, 410, 410}},
		{"GET", "/password/forgot", nil, want{200, 200, 200, 200, 200}},
		{"POST", "/password/forgot", url.Values{"email": {"nope"}}, want{400, 400, 400, 400, 400}},
		{"GET", "/password/reset?token=nope", nil, want{410, 410, 410, 410, 410}},
		{"POST", "/password/reset", url.Values{"token": {"nope"}, "password": {"a long enough password"}}, want{410, 410, 410, 410, 410}},
		{"GET", "/invitations/accept?token=nope", nil, want{410, 410, 410, 410, 410}},
		{"POST", "/invitations/accept", url.Values{"token": {"nope"}}, want{S, 410, 410, 410, 410}},
		{"POST", sp + "/plan/parties/999999/invite", url.Values{}, want{S, 404, 404, 403, 404}},
		{"POST", sp + fmt.Sprintf("/plan/parties/%d/invite", ownerParty.ID), url.Values{}, want{S, 404, 404, 403, 404}}, // not on the plan
		{"GET", "/admin/outbox", nil, want{S, 403, 403, 403, 200}},
		{"GET", fmt.Sprintf("/admin/outbox/%d", outboxID), nil, want{S, 403, 403, 403, 200}},
		{"GET", "/admin/outbox/999999", nil, want{S, 403, 403, 403, 404}},
		{"GET", "/donations/manage?token=nope", nil, want{410, 410, 410, 410, 410}},
		{"POST", "/donations/manage", url.Values{"token": {"nope"}, "action": {"cancel"}}, want{410, 410, 410, 410, 410}},
		{"POST", "/account/sessions/end", url.Values{}, want{S, S, S, S, S}}, // last: it logs each visitor out
	}
	visitors := []struct {
		name string
		u    *user
		pick func(want) int
	}{
		{"anonymous", nil, func(w want) int { return w.anon }},
		{"owner", &owner, func(w want) int { return w.owner }},
		{"other", &other, func(w want) int { return w.other }},
		{"partner", &partner, func(w want) int { return w.partner }},
		{"admin", &admin, func(w want) int { return w.admin }},
	}
	for _, rt := range routes {
		for _, v := range visitors {
			resp := ts.do(t, v.u, rt.method, rt.path, rt.form)
			if got, want := resp.StatusCode, v.pick(rt.want); got != want {
				t.Errorf("%s %s as %s: status %d, want %d", rt.method, rt.path, v.name, got, want)
			}
			if resp.StatusCode == S && v.u == nil && !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
				t.Errorf("%s %s as anonymous: redirected to %q, want the login page", rt.method, rt.path, resp.Header.Get("Location"))
			}
		}
	}

	// Nothing the other creator or the partner sent changed the show.
	after, err := catalog.FindShowByID(ctx, ts.db, show.ID, admin.Account)
	if err != nil {
		t.Fatal(err)
	}
	if after.Title != "Owned" || after.Slug != "owned" {
		t.Errorf("show changed to %q/%q", after.Title, after.Slug)
	}
}

// A form posted from another site is refused, and changes nothing.
func TestCrossSitePostRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	owner := ts.newUser(t, "owner@example.com", catalog.RoleCreator)
	req, _ := http.NewRequest("POST", ts.URL+"/shows", strings.NewReader(url.Values{
		"slug": {"forged"}, "title": {"Forged"}, "currency": {"USD"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(&http.Cookie{Name: "fanseed_session", Value: owner.token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: status %d, want 403", resp.StatusCode)
	}
	if _, err := catalog.FindShowBySlug(context.Background(), ts.db, "forged"); err == nil {
		t.Fatal("the forged show was created")
	}
}
