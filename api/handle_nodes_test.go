package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanseed/fanseed/api"
	"github.com/fanseed/fanseed/catalog"
	"github.com/fanseed/fanseed/migrations/dbtest"
	"github.com/fanseed/fanseed/publishing"
	"github.com/fanseed/fanseed/seeding"
)

// TestNodeAPI checks the seedbox machine API: the token, enrolment and the node's own secret,
// heartbeats (logged at debug) and errors, and the admin fleet page with its node actions.
func TestNodeAPI(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	uploads, err := publishing.NewUploadStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	published := &seeding.Published{DB: db}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	h, err := api.NewServer(api.Config{
		UploadMaxBytes: 1 << 20, Uploads: uploads, Published: published,
		Publisher: &publishing.Publisher{DB: db, Store: uploads, BaseURL: "http://fanseed.test"},
		Tracker:   &seeding.Tracker{Allowed: published.Allowed},
		Fleet:     &seeding.Fleet{DB: db, Published: published, Episodes: publishing.Episodes{}, Log: logger, DownAfter: 45 * time.Second},
		NodeToken: "node-token-0123456789",
		Money:     offlineMoney(t, db),
	}, db, logger, prometheus.NewRegistry(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	var secret string // the header a call carries
	post := func(path, token, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if secret != "" {
			req.Header.Set(seeding.NodeSecretHeader, secret)
		}
		return roundTrip(t, req)
	}
	node := `{"name":"n1","listen_addr":"127.0.0.1:6881","public_addr":"127.0.0.1:6881","capacity_bytes":1000}`
	for _, token := range []string{"", "node-token-012345678", "node-token-0123456789x"} {
		if code, _ := post("/api/nodes", token, node); code != http.StatusUnauthorized {
			t.Errorf("register with token %q: status %d, want 401", token, code)
		}
	}
	code, body := post("/api/nodes", "node-token-0123456789", node)
	var reg seeding.Enrolment
	if code != http.StatusOK || json.Unmarshal([]byte(body), &reg) != nil || reg.ID == 0 || reg.Secret == "" {
		t.Fatalf("register: %d %s", code, body)
	}
	if code, body := post("/api/nodes", "node-token-0123456789", `{"name":"bad name"}`); code != http.StatusBadRequest || !strings.Contains(body, "node name") {
		t.Errorf("register with a bad name: %d %s", code, body)
	}
	// Another process with the fleet token cannot take the name, nor heartbeat as the node.
	if code, body := post("/api/nodes", "node-token-0123456789", node); code != http.StatusConflict || !strings.Contains(body, "fanseed seedbox readmit n1") {
		t.Errorf("registering n1 again without its secret: %d %s, want 409 saying how an admin re-admits", code, body)
	}
	hbPath := "/api/nodes/" + jsonNumber(reg.ID) + "/heartbeat"
	if code, body := post(hbPath, "node-token-0123456789", `{"disk_used":5,"torrents":[]}`); code != http.StatusForbidden || !strings.Contains(body, seeding.NodeSecretHeader) {
		t.Errorf("heartbeat without the node's secret: %d %s, want 403 naming the header", code, body)
	}
	secret = "not-the-secret-0123456789"
	if code, body := post(hbPath, "node-token-0123456789", `{"disk_used":5,"torrents":[]}`); code != http.StatusForbidden || !strings.Contains(body, "wrong or revoked node secret") {
		t.Errorf("heartbeat with a wrong secret: %d %s, want 403", code, body)
	}
	secret = reg.Secret
	code, body = post(hbPath, "node-token-0123456789", `{"disk_used":5,"torrents":[]}`)
	if code != http.StatusOK || !strings.Contains(body, `"status":"up"`) {
		t.Fatalf("heartbeat: %d %s", code, body)
	}
	if code, _ := post(hbPath, "node-token-0123456789", `not json`); code != http.StatusBadRequest {
		t.Errorf("heartbeat with a bad body: %d, want 400", code)
	}
	if code, body := post("/api/nodes", "node-token-0123456789", node); code != http.StatusOK || strings.Contains(body, "secret") {
		t.Errorf("n1 registering again with its secret: %d %s, want 200 without a new secret", code, body)
	}
	// A successful heartbeat is a debug line; the refused ones and the registrations are not.
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "/heartbeat") && strings.Contains(line, "status=200") {
			t.Errorf("a successful heartbeat logged at INFO: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "status=403") || !strings.Contains(logs.String(), "seedbox node registered") {
		t.Errorf("the log lacks the refused heartbeats or the registration:\n%s", logs)
	}
	// The admin fleet page lists the node with what it reported.
	admin, err := catalog.CreateAccount(context.Background(), db, catalog.SignUp{Email: "root@example.com", Name: "Root", Password: "correct horse battery", Role: catalog.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	token, err := catalog.CreateSession(context.Background(), db, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	asAdmin := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "fanseed_session", Value: token})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(page)
	}
	code, page := asAdmin("GET", "/admin/fleet")
	for _, want := range []string{"n1", "127.0.0.1:6881", ">up<", "5 B", "1000 B", "Drain and remove", "Revoke secret", `<span id="down-after">45s</span>`} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("fleet page (status %d) lacks %q", code, want)
		}
	}
	// The capacity shortage the last reconcile stored is on the page.
	if code, page := asAdmin("GET", "/admin/fleet"); code != http.StatusOK || strings.Contains(page, "Capacity shortage") {
		t.Errorf("fleet page (status %d) shows a capacity shortage when there is none", code)
	}
	if _, err := db.Exec(context.Background(), `UPDATE fleet_shortage SET torrents = '{7}', replicas = 2, bytes = 3145728, since = now()`); err != nil {
		t.Fatal(err)
	}
	code, page = asAdmin("GET", "/admin/fleet")
	for _, want := range []string{"Capacity shortage", "1 torrent</strong> need <strong>2 more replicas</strong> (3.0 MiB)"} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("fleet page with a shortage (status %d) lacks %q", code, want)
		}
	}
	// Revoking from the page refuses the node; re-admitting lets it enrol again with a new secret.
	nodePath := "/admin/fleet/nodes/" + jsonNumber(reg.ID)
	if code, page := asAdmin("POST", nodePath+"/revoke"); code != http.StatusOK || !strings.Contains(page, "secret revoked") || !strings.Contains(page, ">down<") {
		t.Errorf("after revoking (status %d) the page does not show n1 revoked and down", code)
	}
	if code, _ := post(hbPath, "node-token-0123456789", `{"disk_used":5,"torrents":[]}`); code != http.StatusForbidden {
		t.Errorf("heartbeat of a revoked node: %d, want 403", code)
	}
	if code, _ := post("/api/nodes", "node-token-0123456789", node); code != http.StatusConflict {
		t.Errorf("a revoked node registering: %d, want 409", code)
	}
	if code, page := asAdmin("POST", nodePath+"/readmit"); code != http.StatusOK || !strings.Contains(page, "re-admitted") {
		t.Errorf("after re-admitting (status %d) the page does not say n1 is re-admitted", code)
	}
	code, body = post("/api/nodes", "node-token-0123456789", node)
	var again seeding.Enrolment
	if code != http.StatusOK || json.Unmarshal([]byte(body), &again) != nil || again.ID != reg.ID || again.Secret == "" || again.Secret == reg.Secret {
		t.Fatalf("re-admitted node registering: %d %s, want its id with a new secret", code, body)
	}
	if strings.Contains(logs.String(), again.Secret) || strings.Contains(logs.String(), reg.Secret) {
		t.Error("a node secret is in the log")
	}
	if code, _ := post("/api/nodes/999999/heartbeat", "node-token-0123456789", `{}`); code != http.StatusNotFound {
		t.Errorf("heartbeat of an unknown node: %d, want 404 (the node registers again)", code)
	}
}

// lockedBuffer is a log sink the server's goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
