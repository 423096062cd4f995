package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/billing"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// testServer is the real handler on loopback over a fresh database.
type testServer struct {
	*httptest.Server
	db        *pgxpool.Pool
	uploadDir string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, nil, io.Discard)
}

// newTestServerWith is newTestServer with its configuration changed by set (when not nil) and
// its log written to logw.
func newTestServerWith(t *testing.T, set func(*api.Config), logw io.Writer) *testServer {
	t.Helper()
	return newTestServerOn(t, dbtest.New(t), set, logw)
}

// newTestServerOn is newTestServerWith over the database db.
func newTestServerOn(t *testing.T, db *pgxpool.Pool, set func(*api.Config), logw io.Writer) *testServer {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logw, nil))
	dir := t.TempDir()
	uploads, err := publishing.NewUploadStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	published := &seeding.Published{DB: db}
	cfg := api.Config{
		UploadMaxBytes: 1 << 20, Uploads: uploads, Published: published, ArtworkDir: filepath.Join(dir, "artwork"),
		Publisher: &publishing.Publisher{DB: db, Store: uploads, BaseURL: "http://fanseed.test"},
		Tracker:   &seeding.Tracker{Allowed: published.Allowed},
		Money:     offlineMoney(t, db),
	}
	if set != nil {
		set(&cfg)
	}
	h, err := api.NewServer(cfg, db, logger, prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, db: db, uploadDir: dir}
}

// offlineMoney is the money service of a test server that applies no Stripe events itself:
// offline test mode, its jobs only inserted.
func offlineMoney(t *testing.T, db *pgxpool.Pool) *billing.Service {
	t.Helper()
	m := &billing.Service{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), WebhookSecret: "whsec_offline_test"}
	if _, err := billing.NewJobClient(m, billing.JobOptions{}); err != nil {
		t.Fatal(err)
	}
	return m
}

// user is an account with a live session.
type user struct {
	catalog.Account
	token string
}

// newUser makes an account whose address is confirmed, as an operator's would be.
func (ts *testServer) newUser(t *testing.T, email, role string) user {
	t.Helper()
	return ts.makeUser(t, email, role, true)
}

// newUnverifiedUser makes an account that has not confirmed its address, as sign-up leaves it.
func (ts *testServer) newUnverifiedUser(t *testing.T, email, role string) user {
	t.Helper()
	return ts.makeUser(t, email, role, false)
}

func (ts *testServer) makeUser(t *testing.T, email, role string, verified bool) user {
	t.Helper()
	ctx := context.Background()
	a, err := catalog.CreateAccount(ctx, ts.db, catalog.SignUp{Email: email, Name: strings.Split(email, "@")[0],
		Password: "correct horse battery", Role: role, Verified: verified})
	if err != nil {
		t.Fatal(err)
	}
	token, err := catalog.CreateSession(ctx, ts.db, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	return user{Account: a, token: token}
}

// do sends a request as u (nil for anonymous) without following redirects.
func (ts *testServer) do(t *testing.T, u *user, method, path string, form url.Values) *http.Response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return ts.send(t, u, req)
}

// roundTrip sends req and returns the status and the body of the answer.
func roundTrip(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
