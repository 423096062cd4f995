package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v76"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/internal/testkit"
	"github.com/fanseed/fanseed/migrations/dbtest"
)

// While PostgreSQL is unreachable, pages, the JSON API and the Stripe webhook answer 503 with
// Retry-After, not 500; a fan page read before serves that copy; the log says once that the
// database is down, with no error line per request, and once that it is back.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, proxy := dbtest.NewURLBehindProxy(t)
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := billing.MigrateJobs(ctx, db); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	money := &billing.Service{DB: db, WebhookSecret: testSecret, Log: slog.New(slog.NewJSONHandler(logs, nil))}
	if _, err := billing.NewJobClient(money, billing.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	ts := newTestServerOn(t, db, func(c *api.Config) { c.Money = money }, logs)
	owner := ts.newUser(t, "maker@example.com", catalog.RoleCreator)
	show, err := catalog.CreateShow(ctx, db, owner.ID, catalog.ShowInput{Slug: "steady", Title: "Steady Signal", Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.CreateShow(ctx, db, owner.ID, catalog.ShowInput{Slug: "unread", Title: "Never Read", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	ts.publishedEpisode(t, show, "Pilot", "pilot.mp3", []byte("ID3\x03 audio"))
	_, apiToken, err := catalog.CreateToken(ctx, db, owner.ID, catalog.TokenInput{Name: "reader", Scope: catalog.ScopeRead, Expiry: "none"})
	if err != nil {
		t.Fatal(err)
	}
	get := func(u *user, path string) (*http.Response, string) {
		t.Helper()
		resp := ts.do(t, u, "GET", path, nil)
		return resp, readBody(t, resp)
	}
	if resp, body := get(nil, "/s/steady"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Pilot") {
		t.Fatalf("fan page before: %d", resp.StatusCode)
	}

	proxy.Cut()
	time.Sleep(5100 * time.Millisecond) // the fan page's copy is stale now
	payload := fmt.Appendf(nil, `{"id":"evt_down_1","object":"event","type":"charge.succeeded","api_version":%q,"data":{"object":{"id":"ch_1","object":"charge"}}}`, stripe.APIVersion)
	for range 3 {
		for _, path := range []string{"/s/unread", "/dashboard", "/api/v1/shows"} {
			var resp *http.Response
			var body string
			switch path {
			case "/s/unread":
				resp, body = get(nil, path)
			case "/dashboard":
				resp, body = get(&owner, path)
			default:
				req, _ := http.NewRequest("GET", ts.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+apiToken)
				resp = ts.send(t, nil, req)
				body = readBody(t, resp)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("GET %s while the database is down: %d, Retry-After %q, want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
				t.Errorf("GET %s shows the error: %s", path, body)
			}
		}
		resp, body := get(nil, "/s/steady")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Pilot") || !strings.Contains(body, "Steady Signal") {
			t.Errorf("fan page while the database is down: %d, want its last copy", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", billing.SignEvent(payload, testSecret))
		wh, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wh.Body.Close()
		if wh.StatusCode != http.StatusServiceUnavailable || wh.Header.Get("Retry-After") == "" {
			t.Errorf("webhook while the database is down: %d, Retry-After %q", wh.StatusCode, wh.Header.Get("Retry-After"))
		}
	}
	if n := strings.Count(logs.String(), `"msg":"database is down`); n != 1 {
		t.Errorf("the log says %d times that the database is down, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
		t.Errorf("%d error lines, want the one saying the database is down:\n%s", n, logs)
	}

	proxy.Restore()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"database is back up"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no line saying the database is back:\n%s", logs)
		}
		get(nil, "/s/unread")
		time.Sleep(200 * time.Millisecond)
	}
	if resp, _ := get(nil, "/s/unread"); resp.StatusCode != http.StatusOK {
		t.Errorf("fan page after the database is back: %d", resp.StatusCode)
	}
	if n := strings.Count(logs.String(), `"msg":"database is back up"`); n != 1 {
		t.Errorf("the log says %d times that the database is back, want once", n)
	}
}
